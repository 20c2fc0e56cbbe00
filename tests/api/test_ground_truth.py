"""Drawn at random: a principal, a resident's resource and an interaction (read, vread,
history, search, update, delete, a transaction entry). Every answer is
checked against a ground truth computed here from the community's consents by a simple,
separate evaluator (not by the policy): nothing disclosed or written that should not be,
and a refusal always answers exactly as a missing id does."""

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.store.repository import Write
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


def may_create(principal: tuple[str, str], rtype: str, rid: str) -> bool:
    """A clinic adds to the record of a resident who consented to it, for a type the
    purpose covers, labelled or not: it wrote the record, so it learns nothing."""
    resident, types = CONSENTED[principal]
    return rid.startswith(resident) and rtype in types


def _stored_body(community: Community, rtype: str, rid: str) -> dict[str, Any]:
    row = community.services.repository.read(rtype, rid)
    assert row is not None
    body = orjson.loads(row.body)
    body.pop("meta", None)
    return dict(body)


def _ask(community: Community, headers: dict[str, str], interaction: str, rtype: str,
         rid: str, body_of: str | None = None) -> Any:
    """One interaction on ``rtype/rid``; a write sends the stored body of ``body_of``
    (default: the resource itself), so that a missing id is asked with the same body."""
    path = f"/fhir/{rtype}/{rid}"
    fhir = {**headers, "Content-Type": "application/fhir+json"}
    if interaction == "read":
        return community.http.get(path, headers=headers)
    if interaction == "vread":
        return community.http.get(f"{path}/_history/1", headers=headers)
    if interaction == "history":
        return community.http.get(f"{path}/_history", headers=headers)
    if interaction == "search":
        return community.http.get(f"/fhir/{rtype}?_id={rid}", headers=headers)
    if interaction == "delete":
        return community.http.delete(path, headers=headers)
    body = {**_stored_body(community, rtype, body_of or rid), "id": rid}
    if interaction == "create":
        body.pop("id")
        if rid == "no-such-id":  # the same record, for a resident who does not exist
            body["patient" if rtype == "Claim" else "subject"] = {
                "reference": "Patient/no-such-id"}
        return community.http.post(f"/fhir/{rtype}", json=body, headers=fhir)
    if interaction == "transaction":
        return community.http.post("/fhir", headers=fhir, json={
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": body, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}}]})
    return community.http.put(path, json=body, headers=fhir)


def _issue(answer: Any) -> Any:
    """An OperationOutcome without the request id in its text."""
    issue = dict(answer.json()["issue"][0])
    issue.pop("details", None)
    return issue


def _restore(community: Community, rtype: str, rid: str, body: dict[str, Any]) -> None:
    """Undo an allowed delete, so that later examples find the community as it was."""
    community.services.repository.apply([Write("update", rtype, rid, body)])


WRITES = {"create", "update", "delete", "transaction"}


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(principal=st.sampled_from(sorted(CONSENTED)), resource=st.sampled_from(RESOURCES),
       interaction=st.sampled_from(["read", "vread", "history", "search", "update",
                                    "delete", "transaction", "create"]))
def test_every_answer_matches_the_ground_truth(community: Community,
                                               principal: tuple[str, str],
                                               resource: tuple[str, str],
                                               interaction: str) -> None:
    client, purpose = principal
    if interaction in WRITES and client not in WRITERS:
        return
    scope = "system/*.cruds" if client in WRITERS else "system/*.rs"
    headers = {**community.headers(client, purpose, scope), "X-Request-ID": "ground-truth"}
    rtype, rid = resource
    before = community.services.repository.read(rtype, rid)
    assert before is not None and not before.deleted, "deleted by an earlier example"
    original = _stored_body(community, rtype, rid)
    answer = _ask(community, headers, interaction, rtype, rid)
    if interaction == "search":
        found = {e["resource"]["id"] for e in answer.json().get("entry", [])}
        assert answer.status_code == 200, answer.text
        assert found == ({rid} if may_read(principal, rtype, rid) else set()), (
            principal, resource)
        return
    if interaction == "create":
        if rtype == "Patient":
            return  # registering a new resident is the registration rule's, not a disclosure
        if may_create(principal, rtype, rid):
            assert answer.status_code == 201, (principal, resource, answer.text)
            return
        missing = _ask(community, headers, interaction, rtype, "no-such-id", body_of=rid)
        assert answer.status_code == missing.status_code == 422, (principal, resource)
        assert _issue(answer) == _issue(missing)
        return
    if may_read(principal, rtype, rid):
        assert answer.status_code in (200, 204), (principal, resource, interaction,
                                                  answer.text)
        if interaction == "delete":
            _restore(community, rtype, rid, original)
        return
    missing = _ask(community, headers, interaction, rtype, "no-such-id", body_of=rid)
    assert answer.status_code == missing.status_code == 404, (principal, resource,
                                                              interaction)
    assert answer.content == missing.content
    after = community.services.repository.read(rtype, rid)
    assert after is not None
    assert after.version_id == before.version_id and not after.deleted  # nothing written
