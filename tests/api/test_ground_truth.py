"""Drawn at random: a principal, a resident's resource and an interaction. Every answer is
checked against a ground truth computed here from the community's consents by a simple,
separate evaluator (not by the policy): nothing disclosed or written that should not be,
and a refusal always answers exactly as a missing id does."""

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.community import Community

# What each principal may see, from the community's consents, written out by hand:
# alice consented to clinic-a for treatment; bob to clinic-b for treatment and to the
# insurer for payment over Patient, Claim and Condition; carol to nobody. Treatment sees
# Patient, Observation and Condition; payment Patient, Claim and Condition. Records
# labelled as mental health (the -psy Observations) open to no consent here.
CONSENTED = {("clinic-a", "TREAT"): ("alice", {"Patient", "Observation", "Condition"}),
             ("clinic-b", "TREAT"): ("bob", {"Patient", "Observation", "Condition"}),
             ("insurer", "HPAYMT"): ("bob", {"Patient", "Claim", "Condition"})}
WRITERS = {"clinic-a", "clinic-b"}  # registered with write scopes

RESOURCES = [(rtype, f"{pid}{suffix}") for pid in ("alice", "bob", "carol")
             for rtype, suffix in (("Patient", ""), ("Observation", "-glu-0"),
                                   ("Observation", "-psy"), ("Condition", "-htn"),
                                   ("Claim", "-claim"))]


def may_read(principal: tuple[str, str], rtype: str, rid: str) -> bool:
    resident, types = CONSENTED[principal]
    return rid.startswith(resident) and rtype in types and not rid.endswith("-psy")


def _ask(community: Community, headers: dict[str, str], interaction: str, rtype: str,
         rid: str, body_of: str | None = None) -> Any:
    """One interaction on ``rtype/rid``; an update sends the stored body of ``body_of``
    (default: the resource itself), so that a missing id is asked with the same body."""
    path = f"/fhir/{rtype}/{rid}"
    if interaction == "read":
        return community.http.get(path, headers=headers)
    if interaction == "vread":
        return community.http.get(f"{path}/_history/1", headers=headers)
    if interaction == "history":
        return community.http.get(f"{path}/_history", headers=headers)
    row = community.services.repository.read(rtype, body_of or rid)
    assert row is not None
    body = {**orjson.loads(row.body), "id": rid}
    body.pop("meta", None)
    return community.http.put(path, json=body, headers={**headers,
                                                        "Content-Type": "application/fhir+json"})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(principal=st.sampled_from(sorted(CONSENTED)), resource=st.sampled_from(RESOURCES),
       interaction=st.sampled_from(["read", "vread", "history", "update"]))
def test_every_answer_matches_the_ground_truth(community: Community,
                                               principal: tuple[str, str],
                                               resource: tuple[str, str],
                                               interaction: str) -> None:
    client, purpose = principal
    if interaction == "update" and client not in WRITERS:
        return
    scope = "system/*.cruds" if client in WRITERS else "system/*.rs"
    headers = {**community.headers(client, purpose, scope), "X-Request-ID": "ground-truth"}
    rtype, rid = resource
    before = community.services.repository.read(rtype, rid)
    answer = _ask(community, headers, interaction, rtype, rid)
    if may_read(principal, rtype, rid):
        assert answer.status_code == 200, (principal, resource, interaction, answer.text)
        return
    missing = _ask(community, headers, interaction, rtype, "no-such-id", body_of=rid)
    assert answer.status_code == missing.status_code == 404, (principal, resource,
                                                              interaction)
    assert answer.content == missing.content
    after = community.services.repository.read(rtype, rid)
    assert before is not None and after is not None
    assert after.version_id == before.version_id  # nothing written
