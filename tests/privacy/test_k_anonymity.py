"""The re-identification guard: property tests over generated populations, and the guard
on the road (a hub search over a community large enough to release something)."""

from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.model import build_consent
from exchange.privacy.disclosure import Shaper
from exchange.privacy.k_anonymity import quasi_identifiers
from tests.api.test_shaping import PROFILES, TODAY
from tests.community import Community, patient
from tests.shapers import released as released_shaper

DISTRICTS = [("杭州市", "西湖区"), ("杭州市", "拱墅区"), ("杭州市", "上城区"), ("宁波市", "海曙区")]

people = st.lists(st.tuples(
    st.dates(min_value=date(1925, 1, 1), max_value=date(1966, 12, 31)),
    st.sampled_from(["female", "male"]),
    st.sampled_from(DISTRICTS),
    st.sampled_from(["310012", "310005", "315000", None]),
), min_size=0, max_size=120)


def population(rows: list[tuple[date, str, tuple[str, str], str | None]]) -> dict[str, Any]:
    out = {}
    for i, (birth, gender, (city, district), postal) in enumerate(rows):
        address: dict[str, Any] = {"line": [f"{i}号"], "city": city, "district": district}
        if postal:
            address["postalCode"] = postal
        out[f"r{i}"] = {"resourceType": "Patient", "id": f"r{i}", "gender": gender,
                        "birthDate": birth.isoformat(), "address": [address],
                        "name": [{"family": "测", "given": [f"试{i}"]}]}
    return out


def release(profile: str, patients: dict[str, Any], key: bytes,
            k: int) -> tuple[list[dict[str, Any]], Any]:
    shaper = Shaper(PROFILES[profile], key, key * 2, patients.get, TODAY)
    rule = shaper.profile.k_anonymity
    assert rule is not None
    shaper.profile.k_anonymity = replace(rule, k=k)
    try:
        verdict = shaper.judge(patients, lambda p: p)
        out = [shaper.shape(p, r) for r, p in patients.items()]
    finally:
        shaper.profile.k_anonymity = rule
    return [o for o in out if o is not None], verdict


@settings(max_examples=60, deadline=None)
@given(rows=people, k=st.integers(min_value=2, max_value=15),
       profile=st.sampled_from(["pseudonymized", "research"]))
def test_every_released_class_holds_at_least_k(rows, k, profile) -> None:
    patients = population(rows)
    released, verdict = release(profile, patients, b"a" * 32, k)
    classes = Counter(quasi_identifiers(p) for p in released)
    assert all(n >= k for n in classes.values())
    assert len(released) + len(verdict.suppressed) == len(patients)
    assert verdict.smallest_class == (min(classes.values()) if classes else 0)


@settings(max_examples=40, deadline=None)
@given(rows=people)
def test_two_domains_share_no_identifier_or_pseudonym(rows) -> None:
    patients = population(rows)
    a, _ = release("pseudonymized", patients, b"a" * 32, 1)
    b, _ = release("pseudonymized", patients, b"b" * 32, 1)
    ids_a = {p["id"] for p in a} | {i["value"] for p in a for i in p.get("identifier", [])}
    ids_b = {p["id"] for p in b} | {i["value"] for p in b for i in p.get("identifier", [])}
    assert not ids_a & ids_b
    assert not ids_a & set(patients) and not ids_b & set(patients)


def test_the_hub_sees_only_classes_of_five_and_is_told_what_was_done(
        community: Community) -> None:
    clinic = community.headers("clinic-a", scope="system/*.cruds")
    for i in range(30):
        pid = f"z{i}"
        birth = f"19{40 + (i % 3)}-0{1 + i % 9}-15" if i < 24 else f"19{20 + i}-06-01"
        r = community.http.post("/fhir/Patient", json={
            **patient(pid, "测", f"试{i}", f"33010619{40 + i % 3}0101{i:03d}X",
                      f"1380000{i:04d}", "female", birth)}, headers=clinic)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = community.http.post("/fhir/Consent", json=build_consent(
            pid, "Organization/hub", ["CAREMGT"], classes=["Patient"]),
            headers=community.resident_headers(pid))
        assert r.status_code == 201, r.text
    hub = community.headers("hub", "CAREMGT")
    body = community.http.get("/fhir/Patient?_count=5", headers=hub).json()
    (outcome,) = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "outcome"]
    text = outcome["issue"][0]["details"]["text"]
    assert "k-anonymity k=5" in text and "of 30 residents" in text
    seen: list[dict[str, Any]] = []
    for offset in range(0, body["total"], 5):
        page = community.http.get(f"/fhir/Patient?_count=5&_offset={offset}", headers=hub)
        seen += [e["resource"] for e in page.json()["entry"] if e["search"]["mode"] == "match"]
    assert len(seen) == body["total"] >= 5
    assert all(n >= 5 for n in Counter(quasi_identifiers(p) for p in seen).values())
    assert "测" not in str(seen)


def test_a_pseudonymized_search_on_what_the_profile_hides_is_refused_unrun(
        small_k_community: Community) -> None:
    """Refused with a 400 before any resident is decided or any SQL runs (#15.4): no
    count and no timing tells how many residents match; and the refusal is recorded."""
    community = small_k_community
    for pid in ("alice", "bob", "carol"):
        community.http.post("/fhir/Consent", json=build_consent(
            pid, "Organization/lab", ["HRESCH"], classes=["Patient", "Observation"]),
            headers=community.resident_headers(pid))
    lab = community.headers("lab", "HRESCH")

    def matches(query: str) -> int:
        r = community.http.get(f"/fhir/{query}", headers=lab)
        assert r.status_code == 200, r.text
        return sum(e["search"]["mode"] == "match" for e in r.json().get("entry", []))

    assert matches("Patient?gender=female") >= 1
    assert matches("Observation?category=vital-signs") >= 1
    repository = community.services.repository
    untouched = {name: getattr(repository, name)
                 for name in ("candidate_residents", "search", "residents_with")}

    def no_sql(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a refused search ran")

    hidden = ("Patient?name=王", "Patient?birthdate=1942-03-08",
              "Patient?identifier=330106194203081228", "Patient?phone=13812345678",
              "Patient?_id=alice", "Observation?date=2024-01-01",
              "Observation?patient=alice", "Observation?patient.name=王",
              "Observation?_sort=-date", "Observation?_sort=_lastUpdated",
              "Observation?code:text=王", "Patient/alice/Observation")
    try:
        for name in untouched:
            setattr(repository, name, no_sql)
        for query in hidden:
            r = community.http.get(f"/fhir/{query}", headers=lab)
            assert r.status_code == 400, (query, r.text)
            assert r.json()["resourceType"] == "OperationOutcome"
            assert "王" not in r.text and "alice" not in r.text and "1942" not in r.text
    finally:
        for name, method in untouched.items():
            setattr(repository, name, method)
    _, page = community.services.ledger.query(limit=200)
    refused = [e for _, e in page if e.get("action") == "search"
               and e.get("outcome") != "success"]
    assert len(refused) >= len(hidden)


def test_identifiers_left_in_clear_count_as_quasi_identifiers() -> None:
    token = {"resourceType": "Patient", "id": "a", "gender": "female",
             "identifier": [{"system": "s", "value": "siv.abc"}]}
    other_token = {**token, "id": "b", "identifier": [{"system": "s", "value": "siv.xyz"}]}
    assert quasi_identifiers(token) == quasi_identifiers(other_token)
    clear = {**token, "identifier": [{"system": "s", "value": "330106194203081228"}]}
    assert quasi_identifiers(clear) != quasi_identifiers(token)


fhir_ids = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789-.")),
                   min_size=1, max_size=64)


@settings(max_examples=150, deadline=None)
@given(pid=fhir_ids, oid=fhir_ids, key=st.binary(min_size=32, max_size=32))
def test_references_follow_their_targets_pseudonyms(pid: str, oid: str, key: bytes) -> None:
    patients = {pid: {"resourceType": "Patient", "id": pid, "gender": "male"}}
    shaper = released_shaper(PROFILES["pseudonymized"], key, key * 2, patients.get, TODAY,
                             {pid})
    shaped_patient = shaper.shape(patients[pid], pid)
    obs = {"resourceType": "Observation", "id": oid, "status": "final",
           "subject": {"reference": f"Patient/{pid}"},
           "hasMember": [{"reference": f"Observation/{oid}"}]}
    shaped_obs = shaper.shape(obs, pid)
    assert shaped_patient is not None and shaped_obs is not None
    assert shaped_obs["subject"]["reference"] == f"Patient/{shaped_patient['id']}"
    assert shaped_obs["hasMember"][0]["reference"] == f"Observation/{shaped_obs['id']}"
    assert pid not in (shaped_patient["id"], shaped_obs["id"])
