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
