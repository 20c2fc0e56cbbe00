"""Generate ``required_bindings.json`` from HL7's R4 package (npm ``hl7.fhir.r4.examples``).

    python -m exchange.fhir.spec.bindings_generation hl7.fhir.r4.examples-4.0.1.tgz

The file holds what the checker (``exchange.fhir.conformance``) needs and nothing more:

* ``structures``: for every resource type and complex data type, and each backbone element,
  the child elements whose type is complex (to walk into) or that carry a required binding,
  with their types (``value[x]`` keeps its list of types);
* ``bindings``: element path -> canonical URL of its required value set;
* ``valueSets``: each of those value sets expanded from the package's own CodeSystems,
  as system -> sorted codes;
* ``notCheckable``: bound elements whose value set needs an external terminology, with why;
* ``provenance``: the package's name, version and tarball digests, and this generator.

Only the base definitions are read (no profiles) and only required bindings are kept:
extensible and preferred bindings allow other codes, so they refuse nothing.
"""

import argparse
import base64
import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from exchange.fhir.spec.expansion import Expander, NotExpandable, canonical

OUTPUT = Path(__file__).with_name("required_bindings.json")
GENERATOR = "exchange.fhir.spec.bindings_generation"
_KINDS = ("StructureDefinition-", "ValueSet-", "CodeSystem-")
# Every complex element may carry these; the checker adds them, the file need not repeat them.
_IMPLIED = frozenset({"extension", "modifierExtension"})


def read_package(source: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(package.json, {file name: resource}) from an npm tarball or an unpacked folder,
    with the tarball's digests in the package's ``dist`` (as npm reports them)."""
    if source.is_dir():
        root = source / "package" if (source / "package").is_dir() else source
        files = {p.name: orjson.loads(p.read_bytes()) for p in root.glob("*.json")
                 if p.name == "package.json" or p.name.startswith(_KINDS)}
        manifest = files.pop("package.json")
        manifest["dist"] = {}  # an unpacked folder has no tarball to vouch for it
        return manifest, files
    data = source.read_bytes()
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and (name == "package.json" or name.startswith(_KINDS)):
                handle = archive.extractfile(member)
                if handle is not None:
                    files[name] = orjson.loads(handle.read())
    manifest = files.pop("package.json")
    manifest["dist"] = {
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        "shasum": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    }
    return manifest, files


def base_definitions(files: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Resource types and complex data types as the specification defines them."""
    for name, sd in sorted(files.items()):
        if not name.startswith("StructureDefinition-"):
            continue
        if sd.get("kind") == "resource" and sd.get("derivation") == "specialization" \
                and not sd.get("abstract"):
            yield sd
        elif sd.get("kind") == "complex-type" and sd.get("derivation") != "constraint":
            yield sd  # Element itself has no derivation


def _is_complex(code: str) -> bool:
    # Primitive types are lower case (``code``, ``dateTime``) or FHIRPath system types.
    return code[:1].isupper()


def structures_of(sd: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """({structure: {element: type or [types]}}, {element path: value set}) of one definition."""
    elements = sd["snapshot"]["element"]
    parents = {e["path"].rsplit(".", 1)[0] for e in elements}
    structures: dict[str, dict[str, Any]] = {sd["type"]: {}}
    bindings: dict[str, str] = {}
    for element in elements[1:]:
        path: str = element["path"]
        parent, name = path.rsplit(".", 1)
        binding = element.get("binding") or {}
        required = binding.get("strength") == "required" and "valueSet" in binding
        if "contentReference" in element:
            types = [element["contentReference"].lstrip("#")]
        elif path in parents:  # a backbone element: its children are its structure
            types = [path]
            structures.setdefault(path, {})
        else:
            codes = [t["code"] for t in element.get("type", [])]
            types = codes if required else [c for c in codes if _is_complex(c)]
        if required:
            bindings[path] = canonical(binding["valueSet"])
        if name in _IMPLIED and types == ["Extension"]:
            continue
        if types:
            structures.setdefault(parent, {})[name] = types[0] if len(types) == 1 else types
    return structures, bindings


def generate(manifest: Mapping[str, Any], files: Mapping[str, Any]) -> dict[str, Any]:
    value_sets = {r["url"]: r for n, r in files.items() if n.startswith("ValueSet-")}
    code_systems = {r["url"]: r for n, r in files.items() if n.startswith("CodeSystem-")}
    expander = Expander(value_sets, code_systems)
    structures: dict[str, dict[str, Any]] = {}
    bindings: dict[str, str] = {}
    resource_types = []
    for sd in base_definitions(files):
        if sd["kind"] == "resource":
            resource_types.append(sd["type"])
        found, bound = structures_of(sd)
        structures.update(found)
        bindings.update(bound)
    expanded: dict[str, dict[str, list[str]]] = {}
    not_checkable: dict[str, str] = {}
    for path, url in sorted(bindings.items()):
        try:
            codes = expanded.get(url) or {s: sorted(c) for s, c in expander.expand(url).items()}
        except NotExpandable as why:
            not_checkable[path] = f"{url} {why}"
            continue
        expanded[url] = codes
    return {
        "provenance": provenance(manifest, GENERATOR),
        "resourceTypes": sorted(resource_types),
        "structures": structures,
        "bindings": {p: u for p, u in bindings.items() if p not in not_checkable},
        "notCheckable": not_checkable,
        "valueSets": expanded,
    }


def provenance(manifest: Mapping[str, Any], generator: str) -> dict[str, Any]:
    """Where generated data comes from: the package, its integrity, and the generator."""
    return {
        "package": manifest["name"], "version": manifest["version"],
        "fhirVersion": (manifest.get("fhirVersions") or [None])[0],
        "integrity": manifest["dist"].get("integrity"),
        "shasum": manifest["dist"].get("shasum"),
        "generator": generator,
    }


def serialize(data: Mapping[str, Any]) -> bytes:
    """Sorted JSON with one line per entry of each section, so a regeneration's diff says
    which element or value set changed."""
    lines = []
    for section, value in sorted(data.items()):
        if isinstance(value, dict):
            items = [f"  {_compact(k)}: {_compact(v)}" for k, v in sorted(value.items())]
            lines.append(f" {_compact(section)}: {{\n" + ",\n".join(items) + "\n }")
        else:
            lines.append(f" {_compact(section)}: {_compact(value)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def _compact(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def write_generated(description: str, output: Path,
                    generate: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
                    argv: list[str] | None = None) -> tuple[dict[str, Any], Path, int]:
    """A generator's command line: read the package named on it, generate, write the
    data (to ``--output``, by default ``output``). The data, where, and its size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("package", type=Path, help="the npm tarball or an unpacked folder")
    parser.add_argument("--output", type=Path, default=output)
    parser.add_argument("--integrity", help="the registry's integrity, for an unpacked folder")
    args = parser.parse_args(argv)
    manifest, files = read_package(args.package)
    if args.integrity:
        manifest["dist"]["integrity"] = args.integrity
    data = generate(manifest, files)
    body = serialize(data)
    args.output.write_bytes(body)
    return data, args.output, len(body)


def main(argv: list[str] | None = None) -> None:
    data, output, _ = write_generated(__doc__.split("\n\n")[0], OUTPUT, generate, argv)
    print(f"{len(data['bindings'])} required bindings checkable, "
          f"{len(data['notCheckable'])} not, {len(data['valueSets'])} value sets "
          f"-> {output}")


if __name__ == "__main__":
    main()
