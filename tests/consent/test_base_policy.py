"""A Consent whose root provision leaves out its type, as R4 allows (the base policy,
``policyRule``, says it): OPTIN permits, OPTOUT denies, and anything else is refused
rather than guessed. Nested provisions must say their type, as R4 requires."""

from typing import Any

import pytest

from consent.model import ACT_CODE, build_consent
from tests.community import Community

FHIR = {"Content-Type": "application/fhir+json"}


def untyped(pid: str, organization: str, base: str, system: str = ACT_CODE) -> dict[str, Any]:
    consent = build_consent(pid, organization, ["TREAT"])
    del consent["provision"]["type"]
    consent["policyRule"] = {"coding": [{"system": system, "code": base}]}
    return consent


def post(community: Community, pid: str, consent: dict[str, Any]) -> int:
    r = community.http.post("/fhir/Consent", json=consent,
                            headers={**community.resident_headers(pid), **FHIR})
    return r.status_code


def sees_carol(community: Community) -> bool:
    r = community.http.get("/fhir/Patient/carol", headers=community.headers("clinic-b"))
    return r.status_code == 200


def test_an_opt_in_without_a_type_permits_what_it_names(community: Community) -> None:
    assert not sees_carol(community)
    assert post(community, "carol", untyped("carol", "Organization/clinic-b", "OPTIN")) == 201
    assert sees_carol(community)
    # Only what it names: another clinic still sees nothing.
    r = community.http.get("/fhir/Patient/carol", headers=community.headers("clinic-a"))
    assert r.status_code == 404


def test_an_opt_out_without_a_type_denies_over_a_permit(community: Community) -> None:
    assert post(community, "carol", build_consent("carol", "Organization/clinic-b",
                                                  ["TREAT"])) == 201
    assert sees_carol(community)
    assert post(community, "carol", untyped("carol", "Organization/clinic-b", "OPTOUT")) == 201
    assert not sees_carol(community)


def test_a_base_policy_that_does_not_say_permit_or_deny_is_refused(
        community: Community) -> None:
    for consent in (untyped("carol", "Organization/clinic-b", "OPTINR"),
                    untyped("carol", "Organization/clinic-b", "OPTIN", "urn:other")):
        assert post(community, "carol", consent) == 422
    both = untyped("carol", "Organization/clinic-b", "OPTIN")
    both["policyRule"]["coding"].append({"system": ACT_CODE, "code": "OPTOUT"})
    assert post(community, "carol", both) == 422
    assert not sees_carol(community)


def test_a_nested_provision_without_a_type_is_refused(community: Community) -> None:
    consent = build_consent("carol", "Organization/clinic-b", ["TREAT"],
                            except_classes=["Observation"])
    del consent["provision"]["provision"][0]["type"]
    assert post(community, "carol", consent) == 422
    assert not sees_carol(community)


@pytest.mark.parametrize("element", ["code", "data", "dataPeriod", "action"])
@pytest.mark.parametrize("nested", [False, True])
def test_a_narrowing_the_policies_cannot_read_is_refused(community: Community, element: str,
                                                         nested: bool) -> None:
    """A permit narrowed to some codes, some records, a period of the data or some actions
    would otherwise be read as the whole permit: the resident is told, nothing stored."""
    narrowing = {"code": [{"coding": [{"system": "http://loinc.org", "code": "15074-8"}]}],
                 "data": [{"meaning": "instance",
                           "reference": {"reference": "Observation/alice-glu-0"}}],
                 "dataPeriod": {"start": "2024-01-01"},
                 "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                   "consentaction", "code": "access"}]}]}
    consent = build_consent("alice", "Organization/clinic-b", ["TREAT"])
    if nested:
        consent["provision"]["provision"] = [{"type": "deny", element: narrowing[element]}]
    else:
        consent["provision"][element] = narrowing[element]
    r = community.http.post("/fhir/Consent", json=consent,
                            headers=community.resident_headers("alice"))
    assert r.status_code == 422, r.text
    assert element in r.json()["issue"][0]["diagnostics"]
    search = community.http.get("/fhir/Consent?patient=alice",
                                headers=community.resident_headers("alice")).json()
    assert search["total"] == 1  # only the consent alice had
