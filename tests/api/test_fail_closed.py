"""Fail closed: a broken policy engine, consent store, key or code path never yields data."""

from pathlib import Path
from typing import Any

import pytest

from adapters.rego_embedded import RegoDecisionPoint
from exchange.errors import KeyUnavailable, PolicyUnavailable
from tests.community import Community, build_community


class BrokenDecisionPoint:
    revision = "broken"

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        raise PolicyUnavailable()


class OddDecisionPoint:
    """Answers, but not in the contract's shape (as a misconfigured OPA might)."""

    def __init__(self, real: RegoDecisionPoint, answer: Any) -> None:
        self.real, self.answer = real, answer
        self.revision = real.revision

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        if entry_point.endswith("token.grant"):
            return self.real.decide(entry_point, policy_input)
        return self.answer  # type: ignore[no-any-return]


def test_unavailable_policy_engine_denies_with_503(community: Community) -> None:
    headers = community.headers("clinic-a")
    community.services.decider._point = BrokenDecisionPoint()  # type: ignore[assignment]
    for path in ("/fhir/Patient/alice", "/fhir/Observation", "/fhir/Patient/alice/$everything"):
        r = community.http.get(path, headers=headers)
        assert r.status_code == 503, path
        assert "秀英" not in r.text and "glu" not in r.text
        assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "policy-unavailable"


@pytest.mark.parametrize("answer", [{}, {"allow": "yes"}, {"allow": True},
                                    {"allow": True, "obligations": {"types": []}}, []])
def test_malformed_policy_answer_denies(community: Community, answer: Any) -> None:
    headers = community.headers("clinic-a")
    real = community.services.decider._point
    community.services.decider._point = OddDecisionPoint(real, answer)  # type: ignore[arg-type]
    r = community.http.get("/fhir/Patient/alice", headers=headers)
    assert r.status_code == 503
    assert "秀英" not in r.text


def test_token_endpoint_fails_closed_when_policy_is_down(community: Community) -> None:
    community.services.decider._point = BrokenDecisionPoint()  # type: ignore[assignment]
    r = community.request_token("clinic-a")
    assert r.status_code == 503 and "access_token" not in r.json()


def test_unreadable_consent_denies(community: Community,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    headers = community.headers("clinic-a")

    def broken(resident: str) -> list:
        raise KeyUnavailable()

    monkeypatch.setattr(community.services.repository, "consents_of", broken)
    r = community.http.get("/fhir/Patient/alice", headers=headers)
    assert r.status_code == 503
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "consent-unavailable"


def test_unexpected_error_never_shows_its_text(community: Community,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    headers = community.headers("clinic-a")

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("patient 王秀英 330106194203081228 broke the shaper")

    monkeypatch.setattr("exchange.gate.shaping.keep_fields", explode)
    r = community.http.get("/fhir/Patient/alice", headers=headers)
    assert r.status_code == 500
    assert "王秀英" not in r.text and "330106194203081228" not in r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert community.services.ledger.verify().ok
    last = list(community.services.ledger.entries())[-1]
    assert last["outcome"] == "error" and last["status"] == 500


def test_missing_key_file_permissions_are_refused(tmp_path: Path) -> None:
    c = build_community(tmp_path)
    c.services.engine.dispose()
    (c.services.settings.keys_dir / "keys.json").chmod(0o644)
    with pytest.raises(KeyUnavailable):
        build_community(tmp_path)
    (c.services.settings.keys_dir / "keys.json").chmod(0o600)
    c.services.settings.keys_dir.chmod(0o755)  # the directory open to others
    with pytest.raises(KeyUnavailable):
        build_community(tmp_path)


def test_policy_compilation_failure_is_policy_unavailable(tmp_path: Path) -> None:
    (tmp_path / "broken.rego").write_text("package exchange\n\ndecision := {")
    with pytest.raises(PolicyUnavailable):
        RegoDecisionPoint(tmp_path)


class OddTokenPolicy:
    """Answers the token grant, but not in the contract's shape."""

    def __init__(self, real: Any, answer: Any) -> None:
        self.real, self.answer = real, answer
        self.revision = real.revision

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]:
        if entry_point.endswith("token.grant"):
            return self.answer  # type: ignore[no-any-return]
        return self.real.decide(entry_point, policy_input)  # type: ignore[no-any-return]


@pytest.mark.parametrize("answer", [
    {}, [], {"allow": True}, {"allow": "yes", "scopes": [], "reasons": []},
    {"allow": True, "scopes": ["x"], "reasons": []},
    {"allow": True, "scopes": [], "reasons": []},
    {"allow": True, "scopes": "system/*.rs", "reasons": []},
    {"allow": True, "scopes": ["system/*.rs"]},
], ids=["empty", "list", "allow-only", "allow-string", "scope-not-asked", "no-scopes",
        "scopes-string", "no-reasons"])
def test_token_endpoint_issues_nothing_on_a_malformed_answer(community: Community,
                                                             answer: Any) -> None:
    real = community.services.decider._point
    community.services.decider._point = OddTokenPolicy(real, answer)  # type: ignore[assignment]
    before = community.services.ledger.size()
    r = community.request_token("clinic-a")
    assert r.status_code == 503, r.text
    assert "access_token" not in r.json()
    entry = community.services.ledger.read(before + 1)
    assert entry is not None and (entry["action"], entry["outcome"]) == ("token", "refused")
