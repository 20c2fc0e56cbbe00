"""A clinic importing HL7's R4 examples through the API, the way it would move a record in.

The community's directory comes first, written by a registrar (a client whose scopes name
each directory type); then each example Patient, registered by the clinic as a new
resident who consents to it at once; then every other example, its references rewritten
to the ids the exchange assigned. Consents and family members (RelatedPerson) are the
resident's own to write, so the resident writes them. Each accepted resource is read back
by whoever wrote it and compared with what was sent.
"""

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from consent.model import build_consent
from exchange.config import Settings
from exchange.fhir.search_params import COMPARTMENT, DIRECTORY_TYPES, SUPPORTED_TYPES
from exchange.identity.assertion import generate_key
from exchange.store.indexing import param_values
from tests.community import Community, RegisteredClient

FHIR = "application/fhir+json"
CLINIC, REGISTRAR = "clinic-h", "registrar"
# Resources written by the resident alone (policy data's resident_managed_types).
RESIDENT_WRITTEN = frozenset({"Consent", "RelatedPerson"})

Example = tuple[str, dict[str, Any]]  # (file name, resource)


def _static() -> dict[str, Any]:
    path = Settings().policy_dir / "exchange" / "static" / "data.json"
    return dict(json.loads(path.read_text()))


def references(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference-shaped element (a dict with a string ``reference``), at any depth,
    contained resources included."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


# The base HL7's examples give absolute references to each other under.
HL7_BASE = "http://hl7.org/fhir/"


def relative(ref: str) -> str | None:
    """``Type/id`` of a relative reference or one under HL7's base (a version dropped),
    else None."""
    ref = ref.removeprefix(HL7_BASE)
    parts = ref.split("/")
    if ref.startswith(("#", "urn:")) or "://" in ref or len(parts) not in (2, 4):
        return None
    if len(parts) == 4 and parts[2] != "_history":
        return None
    return f"{parts[0]}/{parts[1]}"


def foreign_patient(ref: str) -> bool:
    """An absolute reference to a Patient on another server (not HL7's base)."""
    return "://" in ref and not ref.startswith(HL7_BASE) and ref.split("/")[-2] == "Patient"


def contained(resource: dict[str, Any], ref: str) -> dict[str, Any] | None:
    if not ref.startswith("#"):
        return None
    return next((c for c in resource.get("contained") or []
                 if isinstance(c, dict) and c.get("id") == ref[1:]), None)


def whom(resource: dict[str, Any]) -> str:
    """Whom an example's record is about, by HL7's Patient compartment: "resident" when
    it names a Patient (here, on another server or contained), else "Group" when it names
    a group of them, else "none"."""
    kinds = set()
    for param in COMPARTMENT.get(resource["resourceType"], ()):
        for value in param_values(resource, param):
            ref = value.get("reference") if isinstance(value, dict) else None
            if not isinstance(ref, str):
                continue
            inner = contained(resource, ref)
            target = inner["resourceType"] if inner else (relative(ref) or ref).split("/")[-2:][0]
            kinds.add("resident" if target == "Patient" or foreign_patient(ref) else target)
    if resource["resourceType"] in ("Patient", *DIRECTORY_TYPES) or "resident" in kinds:
        return "resident"
    return "Group" if "Group" in kinds else "none"


def key(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id')}"


def import_order(examples: list[Example]) -> list[Example]:
    """The directory first, then residents, then the rest; within that, whatever an example
    references among the others goes before it (a cycle is broken where it is met)."""
    by_key: dict[str, Example] = {}
    for name, resource in examples:
        by_key.setdefault(key(resource), (name, resource))
    rank = {t: 0 for t in DIRECTORY_TYPES} | {"Patient": 1}
    ordered: list[Example] = []
    state: dict[str, str] = {}

    def visit(k: str) -> None:
        if state.get(k):
            return
        state[k] = "visiting"
        for ref in references(by_key[k][1]):
            target = relative(ref["reference"])
            if target in by_key and target != k:
                visit(target)
        state[k] = "done"
        ordered.append(by_key[k])

    for k in sorted(by_key, key=lambda k: (rank.get(k.split("/")[0], 2), k)):
        visit(k)
    seen = {id(r) for _, r in ordered}
    return ordered + [e for e in examples if id(e[1]) not in seen]


def comparable(resource: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the exchange may rightly change: its id, meta.versionId,
    meta.lastUpdated and security labels it added."""
    out = copy.deepcopy(resource)
    out.pop("id", None)
    meta = out.get("meta")
    if isinstance(meta, dict):
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        had = (sent.get("meta") or {}).get("security") or []
        if "security" in meta:
            meta["security"] = [s for s in meta["security"] if s in had]
            if not meta["security"]:
                del meta["security"]
        if not meta:
            del out["meta"]
    return out


def differences(got: Any, sent: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as element paths (never the values: they are a
    resident's, even when synthetic)."""
    if isinstance(got, dict) and isinstance(sent, dict):
        return [d for k in sorted(set(got) | set(sent))
                for d in differences(got.get(k), sent.get(k), f"{path}.{k}".strip("."))]
    if isinstance(got, list) and isinstance(sent, list) and len(got) == len(sent):
        return [d for i, (g, s) in enumerate(zip(got, sent, strict=True))
                for d in differences(g, s, f"{path}[{i}]")]
    return [] if got == sent and type(got) is type(sent) else [path or "(root)"]


@dataclass
class Report:
    total: int = 0
    residentless: set[str] = field(default_factory=set)  # examples naming no resident
    accepted: list[str] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    refused: dict[str, list[str]] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)

    def refuse(self, name: str, reason: str) -> None:
        self.refusals[reason] += 1
        self.refused.setdefault(reason, []).append(name)

    def lines(self) -> list[str]:
        unattached = sum(1 for n in self.accepted if n in self.residentless)
        out = [f"HL7 R4 examples of stored types imported as a clinic would: "
               f"{len(self.accepted)} of {self.total} accepted "
               f"({len(self.accepted) / max(self.total, 1):.1%}); {unattached} of them name "
               f"no resident (held for the clinic, or the resident's whose records they "
               f"refer to)"]
        for reason, count in self.refusals.most_common():
            names = self.refused[reason]
            out.append(f"  {count:3d} refused: {reason}")
            out.append("        " + ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""))
        for name, paths in sorted(self.changed.items()):
            out.append(f"  read back changed: {name}: {', '.join(paths[:6])}")
        for note, count in sorted(self.notes.items()):
            out.append(f"  note: {count:3d} {note}")
        return out


class Importer:
    """Imports examples into a community through its HTTP API, keeping the map from each
    example's ``Type/id`` to the one the exchange assigned."""

    def __init__(self, community: Community) -> None:
        self.community = community
        self.http = community.http
        self.ids: dict[str, str] = {}
        self.report = Report()
        self.fallback: str | None = None  # the resident a dangling Patient reference names
        static = _static()
        self.payment_types = set(static["purposes"]["HPAYMT"]["fields"]) \
            - set(static["purposes"]["TREAT"]["fields"])
        self.labels = sorted({s["code"] for s in static["sensitive_labels"]})
        self.organization = f"Organization/{CLINIC}"
        self._register(CLINIC, ["TREAT", "HPAYMT"], "system/*.cruds")
        directory = " ".join(f"system/{t}.cru" for t in sorted(DIRECTORY_TYPES))
        self._register(REGISTRAR, ["TREAT"], directory)
        self.headers = {
            "TREAT": community.headers(CLINIC, "TREAT", "system/*.cruds"),
            "HPAYMT": community.headers(CLINIC, "HPAYMT", "system/*.cruds"),
            "directory": community.headers(REGISTRAR, "TREAT", directory)}

    def _register(self, client_id: str, purposes: list[str], scopes: str) -> None:
        pem, jwk = generate_key("ES384", f"{client_id}-1")
        self.community.services.registry.add(client_id, client_id, f"Organization/{client_id}",
                                             "clinic", {"keys": [jwk]}, purposes, scopes)
        self.community.clients[client_id] = RegisteredClient(client_id, "ES384", jwk["kid"],
                                                             pem)

    def run(self, examples: list[Example]) -> Report:
        stored = [(n, r) for n, r in examples if r["resourceType"] in SUPPORTED_TYPES]
        self.report.total = len(stored)
        for name, resource in import_order(stored):
            about = whom(resource)
            if about != "resident":
                self.report.residentless.add(name)
            self._import(name, resource, about)
        return self.report

    def _rewrite(self, resource: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(resource)
        body.pop("id", None)
        for ref in references(body):
            target = relative(ref["reference"])
            if foreign_patient(ref["reference"]):
                target = "Patient/"  # no example's: the fallback below
            if target is None:
                continue
            if target in self.ids:
                if ref["reference"] != target:
                    self.report.notes["references to a version now name the resource"] += 1
                ref["reference"] = self.ids[target]
            elif (target.startswith("Patient/") or foreign_patient(ref["reference"])) \
                    and self.fallback is not None:
                self.report.notes["references to a Patient not imported (or on another "
                                  "server) now name the resident imported from "
                                  "Patient-example.json"] += 1
                ref["reference"] = self.fallback
        return body

    def _move_out_patients(self, body: dict[str, Any]) -> None:
        """A Patient contained in a record becomes a resident first, as a clinic moving the
        record in would register them: the exchange keeps no record of an inline person."""
        for inner in [c for c in body.get("contained") or [] if c.get("resourceType") == "Patient"]:
            patient = {k: v for k, v in inner.items() if k != "id"}
            r = self.http.post("/fhir/Patient", json=patient,
                               headers={**self.headers["TREAT"], "Content-Type": FHIR})
            if r.status_code != 201:
                continue
            self._consent(r.json()["id"])
            self.report.notes["contained Patients registered as residents first"] += 1
            body["contained"].remove(inner)
            for ref in references(body):
                if ref["reference"] == f"#{inner['id']}":
                    ref["reference"] = f"Patient/{r.json()['id']}"
        if body.get("contained") == []:
            del body["contained"]

    def _headers(self, rtype: str, body: dict[str, Any]) -> dict[str, str] | None:
        if rtype in DIRECTORY_TYPES:
            return self.headers["directory"]
        if rtype in RESIDENT_WRITTEN:
            resident = next((relative(r["reference"]) for r in references(body)
                             if (relative(r["reference"]) or "").startswith("Patient/")
                             and relative(r["reference"]) in self.ids.values()), None)
            if resident is None:
                return None
            return self.community.resident_headers(resident.split("/", 1)[1])
        return self.headers["HPAYMT" if rtype in self.payment_types else "TREAT"]

    def _import(self, name: str, resource: dict[str, Any], about: str) -> None:
        rtype = resource["resourceType"]
        body = self._rewrite(resource)
        if rtype != "Patient":
            self._move_out_patients(body)
        headers = self._headers(rtype, body)
        if headers is None:
            self.report.refuse(name, "not sent: names no imported resident to write it")
            return
        r = self.http.post(f"/fhir/{rtype}", json=body, headers={**headers,
                                                                 "Content-Type": FHIR})
        if r.status_code != 201:
            issue = (r.json().get("issue") or [{}])[0] if r.content else {}
            about = {"none": " [the example names no Patient]",
                     "Group": " [the example is about a Group]"}.get(about, "")
            self.report.refuse(name, f"{r.status_code} {issue.get('diagnostics', '')}{about}")
            return
        new = f"{rtype}/{r.json()['id']}"
        self.ids.setdefault(key(resource), new)
        self.report.accepted.append(name)
        if rtype == "Patient":
            self._consent(new.split("/", 1)[1])
            if name == "Patient-example.json":
                self.fallback = new
        got = self.http.get(f"/fhir/{new}", headers=headers)
        if got.status_code != 200:
            self.report.changed[name] = [f"read back {got.status_code}"]
            return
        diff = differences(comparable(got.json(), body), comparable(body, body))
        if diff:
            self.report.changed[name] = diff

    def _consent(self, pid: str) -> None:
        """The new resident consents to the clinic for treatment and payment, sensitive
        classes included: the clinic moves their whole record in."""
        consent = build_consent(pid, self.organization, ["TREAT", "HPAYMT"],
                                labels=self.labels, when=self.community.clock.now())
        r = self.http.post("/fhir/Consent", json=consent,
                           headers={**self.community.resident_headers(pid),
                                    "Content-Type": FHIR})
        assert r.status_code == 201, r.text
