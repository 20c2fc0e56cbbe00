"""Seed a demo community: organizations, clients with key pairs, residents, consents."""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from exchange.cli.client_files import write_client
from exchange.decisions.labels import label_records
from exchange.demo.care import DIRECTORY, care_record
from exchange.demo.people import make_person
from exchange.demo.records import consents, patient, record
from exchange.fhir.validation import validate_resource
from exchange.gate import RequestContext, request_id
from exchange.services import Services


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    name: str
    kind: str
    alg: str
    purposes: tuple[str, ...]
    scopes: str


CLIENTS = (
    DemoClient("clinic-a", "翠苑社区卫生服务站 Cuiyuan community clinic", "clinic", "RS384",
               ("TREAT", "ETREAT"), "system/*.cruds"),
    DemoClient("clinic-b", "和睦社区卫生服务中心 Hemu community health centre", "clinic",
               "ES384", ("TREAT", "ETREAT"), "system/*.cruds"),
    DemoClient("insurer", "城乡居民医保结算中心（演示） Demo medical insurance", "insurer",
               "ES384", ("HPAYMT",), "system/*.rs"),
    DemoClient("hub", "未来社区运营中心（演示） Demo future-community hub", "hub", "ES384",
               ("CAREMGT",), "system/*.rs"),
)


@dataclass
class SeedSummary:
    residents: int
    resources: int
    consents: int
    clients: list[str]


def organization(client: DemoClient) -> dict[str, Any]:
    kind = {"clinic": ("prov", "Healthcare Provider"), "insurer": ("pay", "Payer"),
            "hub": ("cg", "Community Group")}[client.kind]
    return {"resourceType": "Organization", "id": client.client_id, "active": True,
            "type": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                "code": kind[0], "display": kind[1]}]}],
            "name": client.name}


def register_clients(services: Services) -> list[str]:
    """The demo's clients, each with a fresh key pair: the private key and the client's
    file in the data directory's ``clients/`` (as ``exchange token`` reads them), the
    public key in the registry."""
    for c in CLIENTS:
        _client, jwk = write_client(services.settings, c.client_id, c.alg, list(c.purposes),
                                    c.scopes, replace=True)
        services.registry.add(c.client_id, c.name, f"Organization/{c.client_id}", c.kind,
                              {"keys": [jwk]}, list(c.purposes), c.scopes)
    return [c.client_id for c in CLIENTS]


def seed_demo(services: Services, residents: int = 300, seed: int = 20261128,
              progress: Callable[[int], None] | None = None,
              today: date | None = None) -> SeedSummary:
    """Create the community. Deterministic for a seed, except the clients' fresh keys."""
    rng = random.Random(seed)
    today = today or services.clock.now().date()
    clients = register_clients(services)
    here = services.repository.here
    services.repository.ingest([validate_resource(organization(c), here=here)
                                for c in CLIENTS])
    services.repository.ingest([validate_resource(r, here=here) for r in DIRECTORY])
    total, consent_count = len(CLIENTS) + len(DIRECTORY), 0
    for index in range(residents):
        person = make_person(rng, index)
        pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        granted = consents(rng, pid, person, today)
        resources = [patient(pid, person), *record(rng, pid, person, today),
                     *care_record(pid, today), *granted]
        services.repository.ingest(label_records(
            services.decider, [validate_resource(r, here=here) for r in resources], here))
        total += len(resources)
        consent_count += len(granted)
        if progress is not None:
            progress(index + 1)
    ctx = RequestContext(request_id(), None, "CLI", "exchange demo")
    with services.gate.recording(ctx, None, "administration", {
            "operation": "seed-demo", "residents": residents, "resources": total}):
        pass
    return SeedSummary(residents, total, consent_count, clients)
