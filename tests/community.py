"""A small synthetic community for tests, served through the real HTTP app."""

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from consent.model import build_consent
from exchange.app import build_services, create_app
from exchange.clock import FixedClock, ManualMonotonic
from exchange.config import Settings
from exchange.identity.assertion import generate_key, make_assertion
from exchange.ports import DecisionPoint
from exchange.services import Services

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RESIDENT_ID = "https://fhir.community-exchange.example/sid/resident-id"
LOINC = "http://loinc.org"


@dataclass
class RegisteredClient:
    client_id: str
    alg: str
    kid: str
    pem: bytes


def patient(pid: str, family: str, given: str, id_number: str, phone: str,
            gender: str = "female", birth: str = "1942-03-08") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"system": RESIDENT_ID, "value": id_number}],
            "name": [{"family": family, "given": [given], "text": family + given}],
            "telecom": [{"system": "phone", "value": phone}],
            "gender": gender, "birthDate": birth,
            "address": [{"line": ["文二西路12号3幢201室"], "city": "杭州市", "district": "西湖区"}]}


def observation(oid: str, pid: str, code: str, when: str, value: float,
                unit: str = "mmol/L", label: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit}}
    if label:
        obs["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                     "v3-ActCode", "code": label}]}
    return obs


def condition(cid: str, pid: str, code: str, onset: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": onset}


def claim(cid: str, pid: str, created: str) -> dict[str, Any]:
    return {"resourceType": "Claim", "id": cid, "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                 "code": "professional"}]},
            "use": "claim", "patient": {"reference": f"Patient/{pid}"}, "created": created,
            "provider": {"reference": "Organization/clinic-a"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True,
                           "coverage": {"display": "basic medical insurance"}}]}


@dataclass
class Community:
    """Three residents: Alice consents to clinic A; Bob to clinic B and the insurer;
    Carol to nobody."""

    services: Services
    http: TestClient
    clock: FixedClock
    monotonic: ManualMonotonic = field(default_factory=ManualMonotonic)
    clients: dict[str, RegisteredClient] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return self.services.settings.token_url

    def assertion(self, client_id: str, **kw: Any) -> str:
        c = self.clients[client_id]
        kw.setdefault("now", self.clock.now().timestamp())
        return make_assertion(client_id, c.pem, c.alg, c.kid, kw.pop("aud", self.token_url),
                              **kw)

    def request_token(self, client_id: str, purpose: str = "TREAT",
                      scope: str = "system/*.rs", assertion: str | None = None) -> httpx.Response:
        return self.http.post("/auth/token", data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(client_id),
            "scope": scope, "purpose_of_use": purpose})

    def token(self, client_id: str, purpose: str = "TREAT", scope: str = "system/*.rs") -> str:
        response = self.request_token(client_id, purpose, scope)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def headers(self, client_id: str, purpose: str = "TREAT",
                scope: str = "system/*.rs") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client_id, purpose, scope)}"}

    def resident_headers(self, pid: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.services.tokens.issue_resident(pid)}"}

    def raw_db(self) -> bytes:
        """Every byte the database holds on disk, after folding the WAL in."""
        path = self.services.settings.data_dir / "exchange.db"
        self.services.engine.dispose()
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = path.read_bytes()
        wal = path.with_name(path.name + "-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")


def build_community(tmp: Path, base_url: str = "http://testserver",
                    point: DecisionPoint | None = None,
                    **settings: Any) -> Community:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    monotonic = ManualMonotonic()  # moved by tests, never by waiting
    services = build_services(Settings(data_dir=tmp, base_url=base_url, **settings),
                              clock=clock, monotonic=monotonic,
                              decision_point=point)
    http = TestClient(create_app(services=services), raise_server_exceptions=False)
    community = Community(services, http, clock, monotonic)
    for client_id, kind, alg, purposes, scopes in (
            ("clinic-a", "clinic", "RS384", ["TREAT", "ETREAT"], "system/*.cruds"),
            ("clinic-b", "clinic", "ES384", ["TREAT"], "system/*.cruds"),
            ("insurer", "insurer", "ES384", ["HPAYMT"], "system/*.rs"),
            ("hub", "hub", "ES384", ["CAREMGT"], "system/*.rs"),
            ("lab", "research", "ES384", ["HRESCH"], "system/*.rs"),
            ("office", "compliance", "ES384", ["HCOMPL"],
             "system/AuditEvent.rs system/Patient.r")):
        pem, jwk = generate_key(alg, f"{client_id}-1")
        services.registry.add(client_id, client_id, f"Organization/{client_id}", kind,
                              {"keys": [jwk]}, purposes, scopes)
        community.clients[client_id] = RegisteredClient(client_id, alg, jwk["kid"], pem)
    repo = services.repository
    repo.ingest([
        {"resourceType": "Organization", "id": cid, "name": f"Organization {cid}"}
        for cid in ("clinic-a", "clinic-b", "insurer", "hub", "lab")])
    repo.ingest([
        patient("alice", "王", "秀英", "330106194203081228", "13912345678"),
        patient("bob", "李", "建国", "330105193805170031", "13587654321", "male", "1938-05-17"),
        patient("carol", "张", "桂兰", "330102195001010020", "18600001111", birth="1950-01-01"),
    ])
    records = []
    for pid in ("alice", "bob", "carol"):
        for i, (when, value) in enumerate((("2022-03-01T09:00:00+08:00", 5.4),
                                           ("2023-06-15T09:00:00+08:00", 6.1),
                                           ("2024-09-30T09:00:00+08:00", 7.2))):
            records.append(observation(f"{pid}-glu-{i}", pid, "15074-8", when, value))
        records.append(observation(f"{pid}-psy", pid, "44249-1", "2024-01-01", 12, "{score}",
                                   label="PSY"))
        records.append(condition(f"{pid}-htn", pid, "I10", "2015-04-01"))
        records.append(claim(f"{pid}-claim", pid, "2024-10-01"))
    repo.ingest(records)
    now = clock.now()
    repo.ingest([
        {**build_consent("alice", "Organization/clinic-a", ["TREAT"], when=now),
         "id": "alice-treat-a"},
        {**build_consent("bob", "Organization/clinic-b", ["TREAT"], when=now),
         "id": "bob-treat-b"},
        {**build_consent("bob", "Organization/insurer", ["HPAYMT"],
                         classes=["Patient", "Claim", "Condition"], when=now),
         "id": "bob-pay"},
    ])
    return community
