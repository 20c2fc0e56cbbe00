"""Policy data is part of the policy: without its static data or a profile it names, the
exchange does not start, and the command line says so in one line."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.app import build_services
from exchange.config import Settings
from exchange.errors import PolicyUnavailable

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _policies_without(tmp_path: Path, relative: str) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES, copy)
    target = copy / relative
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    return copy


@pytest.mark.parametrize("removed", ["exchange/static/data.json",
                                     "exchange/profiles/pseudonymized.json",
                                     "exchange/profiles/research.json",
                                     "exchange/profiles"])
def test_the_exchange_refuses_to_start_without_its_policy_data(tmp_path: Path,
                                                               removed: str) -> None:
    policies = _policies_without(tmp_path, removed)
    data = tmp_path / "data"
    with pytest.raises(PolicyUnavailable):
        build_services(Settings(data_dir=data, policy_dir=policies))
    assert not data.exists()  # refused before anything was made


def test_the_command_line_names_what_is_missing(tmp_path: Path) -> None:
    policies = _policies_without(tmp_path, "exchange/profiles/research.json")
    exe = Path(sys.executable).with_name("exchange")
    ok = subprocess.run([str(exe), "init", "--data", str(tmp_path / "d")], capture_output=True,
                        text=True, check=False, timeout=120)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run([str(exe), "audit", "verify", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, check=False, timeout=120,
                       env={"EXCHANGE_POLICY_DIR": str(policies), "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0
    assert "research" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("change", ["removed", "edited"])
@pytest.mark.parametrize("target", ["exchange/static/data.json",
                                    "exchange/profiles/pseudonymized.json",
                                    "exchange/consent/consent.rego"])
def test_policy_files_that_change_while_serving_stop_every_answer(
        tmp_path: Path, change: str, target: str) -> None:
    """The rules decided with must be the ones deployed: if a policy file vanishes or
    changes while the exchange serves, reads and writes alike answer 503 (cached
    decisions too) and nothing is stored, until it is restarted."""
    from adapters.rego_embedded import RegoDecisionPoint
    from tests.community import build_community, observation

    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    community = build_community(
        tmp_path / "data", point=RegoDecisionPoint(policies, watch_seconds=0),
        policy_dir=policies)
    h = {**community.headers("clinic-a"), "Content-Type": "application/fhir+json"}
    assert community.http.get("/fhir/Observation/alice-glu-0", headers=h).status_code == 200
    path = policies / target
    if change == "removed":
        path.unlink()
    else:
        path.write_text(path.read_text() + "\n")
    r = community.http.get("/fhir/Observation/alice-glu-0", headers=h)
    assert r.status_code == 503
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "policy-unavailable"
    body = observation("new-one", "alice", "8867-4", "2025-01-01", 70, "/min")
    assert community.http.put("/fhir/Observation/new-one", json=body,
                              headers=h).status_code == 503
    assert community.services.repository.read("Observation", "new-one") is None
