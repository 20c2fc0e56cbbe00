"""A resident's compartment: their current records of the asked types, their consents,
and a consent stamp that changes exactly when one of their consents does."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exchange.app import build_services
from exchange.clock import FixedClock
from exchange.config import Settings
from exchange.privacy.blind_index import BlindIndex
from exchange.store.compartments import Compartments
from exchange.store.resources import ResourceVersions, Write
from tests.community import condition, observation, patient


def consent(cid: str, pid: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Consent", "id": cid, "status": status,
            "patient": {"reference": f"Patient/{pid}"}}


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[ResourceVersions, Compartments]]:
    services = build_services(Settings(data_dir=tmp_path),
                              clock=FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    versions = ResourceVersions(services.engine, services.vault,
                                BlindIndex(services.keys.derive("blind-index")),
                                services.clock)
    versions.ingest([
        patient("ann", "Li", "Ann", "R1", "555-0101"),
        patient("bob", "Wang", "Bob", "R2", "555-0102"),
        observation("ann-1", "ann", "2345-7", "2026-01-01", 5.4),
        observation("ann-2", "ann", "2345-7", "2026-01-02", 5.9),
        condition("ann-c", "ann", "E11", "2020-05-01"),
        observation("bob-1", "bob", "2345-7", "2026-01-02", 7.2),
        consent("ann-treat", "ann"),
    ])
    yield versions, Compartments(services.engine, versions)
    services.engine.dispose()


def test_the_compartment_holds_current_records_of_the_asked_types(
        parts: tuple[ResourceVersions, Compartments]) -> None:
    versions, compartments = parts
    versions.apply([Write("delete", "Observation", "ann-2")])
    found = compartments.compartment("ann", ["Observation", "Condition", "Patient"])
    assert [r.reference for r in found] == ["Condition/ann-c", "Observation/ann-1",
                                            "Patient/ann"]
    assert [r.resource_id for r in compartments.compartment("ann", ["Observation"])] \
        == ["ann-1"]
    assert len(compartments.compartment("ann", ["Observation", "Condition"], limit=1)) == 1
    assert compartments.compartment("carol", ["Observation"]) == []
    assert [r.resource_id for r in compartments.consents_of("ann")] == ["ann-treat"]
    assert compartments.consents_of("bob") == []


def test_the_consent_stamp_moves_with_the_residents_consents_only(
        parts: tuple[ResourceVersions, Compartments]) -> None:
    versions, compartments = parts
    before = compartments.consent_stamps(["ann", "bob"])
    assert before["ann"] == compartments.consent_stamp("ann")
    assert before["bob"] == compartments.consent_stamp("bob") == "0:None:None"
    versions.apply([Write("update", "Observation", "ann-1",
                          observation("ann-1", "ann", "2345-7", "2026-01-01", 5.5))])
    assert compartments.consent_stamps(["ann", "bob"]) == before
    versions.apply([Write("update", "Consent", "ann-treat",
                          consent("ann-treat", "ann", "inactive"))])
    after = compartments.consent_stamps(["ann", "bob"])
    assert after["ann"] != before["ann"] and after["bob"] == before["bob"]
    many = [f"r{i}" for i in range(1200)] + ["ann"]
    assert compartments.consent_stamps(many)["ann"] == after["ann"]
