"""Generate ``code_hierarchies.json`` from HL7's R4 package (npm ``hl7.fhir.r4.examples``).

    python -m exchange.fhir.spec.hierarchy_generation hl7.fhir.r4.examples-4.0.1.tgz

The file holds the is-a hierarchies of the package's CodeSystems, which ``:below`` and
``:above`` on a token search expand (``exchange.fhir.subsumption``), and nothing more:

* ``systems``: canonical URL -> parent code -> its direct children, sorted; a code with
  no child is not listed as a parent, and a code with no parent is listed only as one;
* ``provenance``: the package's name, version and tarball digests, and this generator.

Only CodeSystems that declare ``hierarchyMeaning`` ``is-a`` are read: a child of those is
a kind of its parent, so a search for the parent may find it. A hierarchy of another
meaning (``grouped-by``, ``part-of``, ``classified-with``), or of none declared (R4's own
``condition-clinical`` nests ``recurrence`` under ``active`` but says nothing of what the
nesting means), is no subsumption and is left out. Within an is-a CodeSystem a child is
a nested ``concept``, or named by a ``child`` property, or names its parent by a
``parent`` or ``subsumedBy`` property (the ``concept-properties`` of R4): v3 codes with
more than one parent are nested under one and named as a child of the others. Systems in
which no code has a parent (depth 1) are left out.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from exchange.fhir.spec.bindings_generation import provenance, write_generated

OUTPUT = Path(__file__).with_name("code_hierarchies.json")
GENERATOR = "exchange.fhir.spec.hierarchy_generation"
_CHILD = frozenset({"child"})
_PARENT = frozenset({"parent", "subsumedBy"})


def hierarchy_of(code_system: Mapping[str, Any]) -> dict[str, list[str]]:
    """Parent code -> its direct children, of one is-a CodeSystem ({} for any other)."""
    if code_system.get("hierarchyMeaning") != "is-a":
        return {}
    edges: set[tuple[str, str]] = set()  # (parent, child)

    def walk(concepts: Iterable[Any], parent: str | None) -> None:
        for concept in concepts:
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            if parent is not None:
                edges.add((parent, code))
            for prop in concept.get("property") or []:
                other = prop.get("valueCode")
                if not isinstance(other, str):
                    continue
                if prop.get("code") in _CHILD:
                    edges.add((code, other))
                elif prop.get("code") in _PARENT:
                    edges.add((other, code))
            walk(concept.get("concept") or [], code)

    walk(code_system.get("concept") or [], None)
    children: dict[str, list[str]] = {}
    for parent, child in sorted(edges):
        if parent != child:
            children.setdefault(parent, []).append(child)
    return children


def generate(manifest: Mapping[str, Any], files: Mapping[str, Any]) -> dict[str, Any]:
    systems: dict[str, dict[str, list[str]]] = {}
    for name, resource in sorted(files.items()):
        if not name.startswith("CodeSystem-") or not isinstance(resource.get("url"), str):
            continue
        found = hierarchy_of(resource)
        if found:
            systems[resource["url"]] = found
    return {
        "provenance": provenance(manifest, GENERATOR),
        "systems": systems,
    }


def main(argv: list[str] | None = None) -> None:
    data, output, size = write_generated(__doc__.split("\n\n")[0], OUTPUT, generate, argv)
    codes = sum(len(c) for s in data["systems"].values() for c in s.values())
    print(f"{len(data['systems'])} is-a CodeSystems, {codes} parent links, "
          f"{size:,} bytes -> {output}")


if __name__ == "__main__":
    main()
