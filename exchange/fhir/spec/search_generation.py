"""Generate ``search_parameters.json`` from HL7's R4 definitions.

Run as ``python -m exchange.fhir.spec.search_generation hl7.fhir.r4.examples-4.0.1.tgz``
(``npm pack hl7.fhir.r4.examples`` fetches it; the package carries the specification's
1,400 ``SearchParameter`` resources and ``CompartmentDefinition/patient``). The output is
kept in the repository with its provenance; the indexer and the search parser read it,
so a new type needs policy, not code.

Each parameter keeps its FHIRPath expression. Where the expression is a plain path (the
great majority: ``Observation.code``, ``(Observation.effective as dateTime)``,
``Observation.subject.where(resolve() is Patient)``, ``Patient.telecom.where(system='phone')``)
it is also compiled here into steps the indexer walks without a FHIRPath engine; the rest
are evaluated with ``fhirpathpy``.
"""

import base64
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("search_parameters.json")

# The Patient compartment's types that a community's lifelong record uses. Left out, and
# why: AuditEvent (the trail is the ledger's, served as BALP AuditEvents), Group (lists of
# residents kept by a payer or the hub: issue 17), Person (links a resident's records
# across systems: a linkage tool, not a record), Schedule (a provider's availability),
# ResearchSubject and MolecularSequence (no research or genomics in the community), Basic
# (no defined meaning to decide on).
LEFT_OUT = frozenset({"AuditEvent", "Group", "Person", "Schedule", "ResearchSubject",
                      "MolecularSequence", "Basic"})

# Shared records of no resident: the community's directory.
DIRECTORY_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Location",
                   "HealthcareService", "Device", "Medication", "Substance", "Endpoint")

# Which compartment parameter makes a resource part of a resident's record, when a
# resource names several people: the one it is about, never its author or payer.
OWNER_PREFERENCE = ("patient", "subject", "beneficiary", "member", "actor")

# Kinds kept. A composite combines others on one item (an Observation's code and value,
# or one component's); "special" ones (near, contains) have no generic meaning.
KINDS = frozenset({"token", "string", "date", "reference", "uri", "quantity", "number",
                   "composite"})

_TYPE = r"[A-Z][A-Za-z]+"
_STEPS = r"(?:\.[a-z][A-Za-z0-9]*)+"
_PLAIN = re.compile(rf"({_TYPE})({_STEPS})")
_AS = re.compile(rf"({_TYPE})({_STEPS})(?: as |\.as\()([A-Za-z]+)\)?")
_RESOLVE = re.compile(rf"({_TYPE})({_STEPS})\.where\(resolve\(\) is ({_TYPE})\)")
_WHERE = re.compile(rf"({_TYPE})({_STEPS})\.where\(([a-z][A-Za-z]*)='([^']*)'\)")
_EXTENSION = re.compile(rf"({_TYPE})((?:\.[a-z][A-Za-z0-9]*)*)\.extension\('([^']+)'\)")


def split_union(expression: str) -> list[str]:
    """The parts of a top-level ``|`` union, respecting parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(expression):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == "|":
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


def _unwrap(part: str) -> str:
    while part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]):
        part = part[1:-1].strip()
    return part


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def compile_part(part: str) -> tuple[str, dict[str, Any] | None]:
    """``(type, step)`` for one union part: a step is ``{"path", "where", "target"}``, or
    None when the part needs a FHIRPath engine."""
    part = _unwrap(part)
    if m := _PLAIN.fullmatch(part):
        return m[1], {"path": m[2][1:]}
    if m := _AS.fullmatch(part):
        steps = m[2][1:].split(".")
        steps[-1] += m[3][0].upper() + m[3][1:]  # value as Quantity -> valueQuantity
        return m[1], {"path": ".".join(steps)}
    if m := _RESOLVE.fullmatch(part):
        return m[1], {"path": m[2][1:], "target": m[3]}
    if m := _WHERE.fullmatch(part):
        return m[1], {"path": m[2][1:], "where": [m[3], m[4]]}
    if m := _EXTENSION.fullmatch(part):  # the extensions with that url (their values)
        path = f"{m[2][1:]}.extension" if m[2] else "extension"
        return m[1], {"path": path, "where": ["url", m[3]]}
    head = re.match(_TYPE, part)
    return (head[0] if head else ""), None


def choice_elements(structures: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``Observation.effective`` -> ``["DateTime", "Period", ...]``: the element paths of
    choice elements (``[x]``) and the types their JSON names end with."""
    out: dict[str, list[str]] = {}
    for sd in structures:
        for element in (sd.get("snapshot") or {}).get("element", []):
            path = element.get("path", "")
            if path.endswith("[x]"):
                out[path[:-3]] = [t["code"][0].upper() + t["code"][1:]
                                  for t in element.get("type", [])]
    return out


def summary_elements(structures: list[dict[str, Any]],
                     types: set[str]) -> dict[str, dict[str, list[str]]]:
    """Per type, its top-level elements that R4 marks ``isSummary`` (``_summary=true``)
    and those it requires (``min >= 1``, kept by ``_summary=text``), as JSON names:
    ``effective[x]`` is every ``effective…`` its types allow."""
    choices = choice_elements(structures)
    out: dict[str, dict[str, list[str]]] = {}
    for sd in structures:
        rtype = sd.get("type")
        if rtype not in types:
            continue
        summary, mandatory = set(), set()
        for element in (sd.get("snapshot") or {}).get("element", []):
            path = element.get("path", "")
            if path.count(".") != 1:
                continue
            name = path.split(".", 1)[1]
            names = ([name[:-3] + k for k in choices.get(path[:-3], [])]
                     if name.endswith("[x]") else [name])
            if element.get("isSummary"):
                summary.update(names)
            if element.get("min", 0) >= 1:
                mandatory.update(names)
        out[rtype] = {"summary": sorted(summary), "mandatory": sorted(mandatory)}
    return out


def expand_choices(rtype: str, step: dict[str, Any],
                   choices: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One step per JSON name: ``effective`` is stored as ``effectiveDateTime``,
    ``effectivePeriod`` and so on, never as ``effective``."""
    paths = [""]
    for name in step["path"].split("."):
        expanded: list[str] = []
        for prefix in paths:
            dotted = f"{prefix}.{name}" if prefix else name
            kinds = choices.get(f"{rtype}.{dotted}")
            if kinds and not any(name.endswith(k) for k in kinds):
                expanded.extend(f"{dotted}{k}" for k in kinds)
            else:
                expanded.append(dotted)
        paths = expanded
    return [{**step, "path": path} for path in paths]


def parameters_of(definitions: list[dict[str, Any]], types: set[str],
                  choices: dict[str, list[str]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in sorted(types)}
    kinds = {d.get("id"): d.get("type") for d in definitions}
    for sp in sorted(definitions, key=lambda d: (d.get("code", ""), d.get("id", ""))):
        kind, expression = sp.get("type"), sp.get("expression")
        if kind not in KINDS or not expression:
            continue
        by_type: dict[str, list[str]] = {}
        for part in split_union(expression):
            rtype, _ = compile_part(part)
            by_type.setdefault(rtype, []).append(part)
        for rtype in sp.get("base", []):
            if rtype not in types or rtype not in by_type:
                continue
            if kind == "composite":
                composite = _composite(rtype, by_type[rtype], sp, kinds, choices)
                if composite is not None:
                    out[rtype][sp["code"]] = composite
                continue
            steps = [compile_part(p)[1] for p in by_type[rtype]]
            entry: dict[str, Any] = {"type": kind, "expression": " | ".join(by_type[rtype])}
            if all(s is not None for s in steps):
                entry["steps"] = [e for s in steps if s is not None
                                  for e in expand_choices(rtype, s, choices)]
            if sp.get("target"):
                entry["targets"] = sorted(sp["target"])
            out[rtype][sp["code"]] = entry
    return out


def _composite(rtype: str, parts: list[str], sp: dict[str, Any], kinds: dict[Any, Any],
               choices: dict[str, list[str]]) -> dict[str, Any] | None:
    """A composite's items (the resource itself, or each of an element's items, such as
    an Observation's components) and, per component, its kind and its paths within an
    item; None when a part is more than a path."""
    items = []
    for part in parts:
        part = _unwrap(part)
        if part == rtype:
            items.append("")
        elif m := _PLAIN.fullmatch(part):
            items.append(m[2][1:])
        else:
            return None
    components = []
    for component in sp.get("component", []):
        kind = kinds.get(component["definition"].rsplit("/", 1)[-1])
        paths: list[str] = []
        for piece in split_union(component["expression"]):
            piece = _unwrap(piece)
            m = re.fullmatch(r"([a-z][A-Za-z0-9.]*?)(?:\.as\(| as )([A-Za-z]+)\)?", piece)
            if m:
                paths.append(m[1] + m[2][0].upper() + m[2][1:])
            elif re.fullmatch(r"[a-z][A-Za-z0-9.]*", piece):
                for item in items:
                    inside = f"{item}.{piece}" if item else piece
                    kinds_of = choices.get(f"{rtype}.{inside}")
                    paths.extend(f"{piece}{k}" for k in kinds_of) if kinds_of \
                        else paths.append(piece)
            else:
                return None
        if kind is None or not paths:
            return None
        components.append({"type": kind, "paths": sorted(set(paths))})
    return {"type": "composite", "expression": " | ".join(parts), "items": items,
            "components": components}


def compartment_of(definition: dict[str, Any], types: set[str]) -> dict[str, list[str]]:
    """Per type, the parameters that place a resource in a resident's record, the owner's
    first (``OWNER_PREFERENCE``)."""
    out = {}
    for item in definition.get("resource", []):
        params = item.get("param") or []
        if item["code"] in types and params:
            out[item["code"]] = sorted(params, key=lambda p: (
                OWNER_PREFERENCE.index(p) if p in OWNER_PREFERENCE else len(OWNER_PREFERENCE)))
    return out


def _members(source: Path) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The package's provenance and its JSON files, from a ``.tgz`` (preferred: its
    integrity is recorded) or an unpacked folder."""
    if source.is_dir():
        manifest = json.loads((source / "package.json").read_text())
        files = [(p.name, p.read_bytes()) for p in sorted(source.glob("*.json"))]
        return {"package": manifest["name"], "version": manifest["version"]}, files
    raw = source.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(raw).digest()).decode()
    files = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member) if member.isfile() else None
            if data is not None and member.name.endswith(".json"):
                files.append((member.name.rsplit("/", 1)[-1], data.read()))
    manifest = json.loads(dict(files)["package.json"])
    return {"package": manifest["name"], "version": manifest["version"],
            "integrity": integrity}, files


def generate(source: Path) -> dict[str, Any]:
    provenance, files = _members(source)
    definitions, structures, patient = [], [], None
    for name, data in files:
        if name.startswith("SearchParameter-"):
            definition = json.loads(data)
            # The package also holds example SearchParameters (``example-reference`` would
            # make Condition's ``subject`` point at Organizations) and those of optional
            # extensions, all marked experimental: the specification's own are not.
            if not definition.get("experimental"):
                definitions.append(definition)
        elif name.startswith("StructureDefinition-"):
            sd = json.loads(data)
            if sd.get("kind") == "resource" and sd.get("derivation") == "specialization":
                structures.append(sd)
        elif name == "CompartmentDefinition-patient.json":
            patient = json.loads(data)
    if patient is None:
        raise SystemExit("CompartmentDefinition/patient is not in the package")
    in_compartment = {i["code"] for i in patient["resource"] if i.get("param")}
    record = in_compartment - LEFT_OUT
    types = record | set(DIRECTORY_TYPES)
    parameters = parameters_of(definitions, types | {"Resource"}, choice_elements(structures))
    common = parameters.pop("Resource")
    return {
        "provenance": {**provenance, "generator": "exchange.fhir.spec.search_generation",
                       "from": ["SearchParameter/* (not experimental)",
                                "CompartmentDefinition/patient",
                                "StructureDefinition/* (choice and summary elements)"]},
        "record_types": sorted(record),
        "directory_types": sorted(DIRECTORY_TYPES),
        "compartment": compartment_of(patient, record),
        "elements": summary_elements(structures, types),
        "parameters": parameters,
        # Every type's: meta.tag, meta.security, meta.profile, meta.source. _id and
        # _lastUpdated are columns of the store, not indexed values.
        "common": {name: p for name, p in common.items()
                   if name not in ("_id", "_lastUpdated")},
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    data = generate(Path(sys.argv[1]))
    OUTPUT.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    params = sum(len(p) for p in data["parameters"].values())
    engine = sum(1 for p in data["parameters"].values() for e in p.values()
                 if "steps" not in e and e["type"] != "composite")
    print(f"{OUTPUT.name}: {len(data['parameters'])} types, {params} parameters, "
          f"{engine} of them evaluated with fhirpathpy")


if __name__ == "__main__":
    main()
