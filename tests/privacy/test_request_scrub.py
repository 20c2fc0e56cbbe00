"""What the audit trail keeps of a request's query and path (exchange/privacy/request_scrub):
the question's shape, never a value that identifies a person."""

import re
from urllib.parse import quote, unquote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.privacy.request_scrub import WITHHELD, scrub_path, scrub_query

ID = re.compile(r"[A-Za-z0-9.\-]{1,64}\Z")
REFERENCES = {"alice": "a1b2c3d4e5f60718", "bob": "0f1e2d3c4b5a6978"}


def reference(resident: str) -> str | None:
    return REFERENCES.get(resident)


def test_values_that_describe_a_person_are_withheld() -> None:
    for rtype, query in [
            ("Patient", "name=%E7%8E%8B%E7%A7%80%E8%8B%B1"), ("Patient", "family=x&given=y"),
            ("Patient", "telecom=13912345678"), ("Patient", "phone=13912345678"),
            ("Patient", "email=a%40b.example"), ("Patient", "identifier=urn%7C3301"),
            ("Patient", "birthdate=1942-03-08"), ("Patient", "address-city=x"),
            ("Observation", "patient.name=x"), ("Observation", "subject:Patient.phone=1"),
            ("Patient", "_has:Observation:patient:code=1"), ("Observation", "code:text=x"),
            ("Observation", "subject:identifier=urn%7C3301"), ("Coverage", "identifier=1")]:
        scrubbed = scrub_query(query, rtype, reference)
        assert scrubbed.split("&")[0].endswith("=" + WITHHELD), (query, scrubbed)


def test_a_resident_named_by_id_is_named_by_their_ledger_reference() -> None:
    mark = "[resident:a1b2c3d4e5f60718]"
    assert scrub_query("patient=alice", "Observation", reference) == f"patient={mark}"
    assert scrub_query("subject=Patient%2Falice", "Observation", reference) == f"subject={mark}"
    assert scrub_query("subject:Patient=alice", "Observation", reference) == \
        f"subject:Patient={mark}"
    assert scrub_query("patient=http://x.example/fhir/Patient/alice/_history/2",
                       "Observation", reference) == f"patient={mark}"
    assert scrub_query("_id=alice,bob,zed", "Patient", reference) == \
        f"_id={mark},[resident:0f1e2d3c4b5a6978],{WITHHELD}"
    # An id no resident has (none ever did, or an erased one) is withheld, not kept.
    assert scrub_query("patient=erased", "Observation", reference) == f"patient={WITHHELD}"
    assert scrub_path("/fhir/Patient/alice/$everything", reference) == \
        f"/fhir/Patient/{mark}/$everything"
    assert scrub_path("/fhir/Patient/erased", reference) == f"/fhir/Patient/{WITHHELD}"
    assert scrub_path("/fhir/Patient/_search", reference) == "/fhir/Patient/_search"


def test_the_shape_of_the_question_stays() -> None:
    for rtype, query in [
            ("Observation", "code=http://loinc.org%7C15074-8&date=ge2024-01-01&_count=5"),
            ("Observation", "status=final&_sort=-date&_include=Observation:patient"),
            ("Observation", "encounter=Encounter/e1&performer=Practitioner/p1"),
            ("Observation", "subject:Device=d1&patient:missing=true"),
            ("Observation", "_id=o1,o2"),
            ("Patient", "gender=female&_summary=count"), (None, "_type=Patient,Observation")]:
        assert scrub_query(query, rtype, reference) == query
    assert scrub_path("/fhir/Observation/o1/_history/2", reference) == \
        "/fhir/Observation/o1/_history/2"


def test_a_parameter_it_does_not_know_is_withheld_whole() -> None:
    assert scrub_query("13912345678", "Patient", reference) == WITHHELD
    assert scrub_query("wangxiuying=1&_count=2", "Patient", reference) == \
        f"{WITHHELD}={WITHHELD}&_count=2"


PERSONAL = ["name", "family", "given", "telecom", "phone", "email", "identifier",
            "address", "address-city", "address-postalcode", "birthdate", "death-date",
            "patient.name", "subject:Patient.identifier", "name:exact", "name:contains",
            "given:text", "_has:Observation:patient:identifier", "no-such-parameter",
            "patient", "subject", "_id", "link", "general-practitioner:Patient"]
# Text the scrubbed query may hold whatever was asked: parameter names and the marks.
NOISE = "&".join(PERSONAL) + WITHHELD + "".join(f"[resident:{r}]" for r in REFERENCES.values())
# What a person is known by: CJK names, digits (phones, ID numbers), ASCII words (ids).
secrets_ = st.one_of(
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2,
            max_size=6),
    st.text("0123456789", min_size=6, max_size=18),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=6, max_size=12).map(lambda s: "zz" + s),
    st.text(min_size=6, max_size=20)).filter(lambda s: s.strip() != "" and s not in NOISE)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PERSONAL), secrets_), min_size=1, max_size=6),
       st.sampled_from(["Patient", "Observation", "Condition", None]),
       st.booleans())
def test_no_personal_value_survives_in_any_form(pairs: list[tuple[str, str]],
                                                rtype: str | None, plus: bool) -> None:
    """However a client encodes a personal value, and whatever it is put next to, the
    scrubbed query holds it neither as sent nor decoded."""
    query = "&".join(f"{quote(k)}={quote(v, safe='') if not plus else quote(v).replace('%20', '+')}"
                     for k, v in pairs)
    scrubbed = scrub_query(query, rtype, reference)
    decoded = unquote_plus(scrubbed)
    assert len(scrubbed.split("&")) == len(pairs)
    # Another type's ``_id`` names a record, not a person, and is kept.
    kept = [v for k, v in pairs
            if k == "_id" and rtype in ("Observation", "Condition") and ID.match(v)]
    for _, value in pairs:
        if any(value in k for k in kept):
            continue
        for form in (value, quote(value, safe=""), quote(value)):
            assert form not in scrubbed and value not in decoded, (query, scrubbed)
