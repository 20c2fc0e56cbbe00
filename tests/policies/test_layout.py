"""The layout of ``policies/``: one package per concern, as Regal and the Styra Rego style
guide lay Rego out (no Regal binary is installed where this is built, so the checks that
matter here are written out).

- a folder is one package, named by its path (Regal's directory-package-mismatch), its
  module ``x.rego`` beside ``x_test.rego`` in package ``…_test``;
- every rule that yields a reason carries a METADATA block with that reason's code and its
  English and Chinese texts (the reason catalogue, ``PolicyBundle.reasons``), one text per
  code across the bundle;
- the rules marked ``entrypoint: true`` are exactly the ones the decision points query;
- packages refer to each other by full path (``data.exchange.consent.types``), never
  through an import: regorus resolves an imported name at run time, which made decisions
  twice as slow in the RVM, and its interpreter can misread an imported rule inside a
  function body. The references form a tree, with no cycle (Regal's circular-import).
"""

import re
from collections import defaultdict
from pathlib import Path

import yaml

from exchange.config import Settings
from exchange.decisions.bundle import ENTRY_POINTS, load_bundle

POLICIES = Settings().policy_dir
BUNDLE = load_bundle(POLICIES)
MODULES = dict(BUNDLE.modules)
TESTS = dict(BUNDLE.tests)
PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)
REASON_RULE = re.compile(r'^(?:reasons|refusals) contains "([a-z_]+)"', re.M)


def package_of(source: str) -> str:
    match = PACKAGE.search(source)
    assert match, "every module declares its package"
    return match.group(1)


def annotations(source: str) -> list[tuple[dict, str]]:
    """Each METADATA block (as YAML) with the first line of code after it."""
    found = []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line != "# METADATA":
            continue
        block = []
        j = i + 1
        while j < len(lines) and lines[j].startswith("#"):
            block.append(lines[j][2:] if lines[j].startswith("# ") else lines[j][1:])
            j += 1
        found.append((yaml.safe_load("\n".join(block)) or {}, lines[j] if j < len(lines) else ""))
    return found


def test_each_folder_is_one_package_named_by_its_path() -> None:
    for path, source in {**MODULES, **TESTS}.items():
        folder = Path(path).parent.as_posix().replace("/", ".")
        suffix = "_test" if Path(path).stem.endswith("_test") else ""
        assert package_of(source) == folder + suffix, path


def test_each_module_has_its_tests_beside_it() -> None:
    for path in MODULES:
        assert path.removesuffix(".rego") + "_test.rego" in TESTS, path
    concerns = {Path(p).parent.name for p in MODULES if Path(p).parent.name != "exchange"}
    assert {"purposes", "consent", "sensitive", "disclosure", "break_glass", "proxy",
            "reidentification", "oversight", "registration", "directory", "token",
            "labels"} <= concerns


def test_every_rule_that_gives_a_reason_is_annotated_with_it() -> None:
    texts: dict[str, dict[str, str]] = {}
    for path, source in MODULES.items():
        annotated = {}
        for meta, rule in annotations(source):
            custom = meta.get("custom") or {}
            if "reason" in custom:
                assert REASON_RULE.match(rule), f"{path}: {custom['reason']} annotates {rule!r}"
                annotated[rule] = custom
        for match in REASON_RULE.finditer(source):
            line = source[match.start():].split("\n", 1)[0]
            custom = annotated.get(line)
            assert custom, f"{path}: {line!r} has no METADATA block with its reason"
            code = match.group(1)
            assert custom["reason"] == code and custom["en"] and custom["zh"], (path, code)
            text = {"en": custom["en"], "zh": custom["zh"]}
            assert texts.setdefault(code, text) == text, f"{code} is explained twice"
    assert texts == BUNDLE.reasons


def test_the_entry_points_are_the_rules_the_decision_points_query() -> None:
    marked = set()
    for source in MODULES.values():
        for meta, rule in annotations(source):
            if meta.get("entrypoint"):
                name = re.match(r"^(\w+)", rule)
                assert name, rule
                marked.add(f"data.{package_of(source)}.{name.group(1)}")
    assert marked == set(ENTRY_POINTS)


def test_packages_refer_to_each_other_by_path_and_without_a_cycle() -> None:
    packages = {package_of(s): s for s in MODULES.values()}
    rules = {p: set(re.findall(r"^(?:default )?([a-z_]\w*)\b", s, re.M)) - {"package", "import"}
             for p, s in packages.items()}
    uses: dict[str, set[str]] = defaultdict(set)
    for package, source in packages.items():
        imported = re.findall(r"^import (data\.\S+)", source, re.M)
        assert not imported, f"{package} imports {imported}: refer by full path"
        for ref in re.findall(r"\bdata\.([a-z_][\w.]*)", source):
            parts = ref.split(".")
            for n in range(len(parts) - 1, 0, -1):
                target = ".".join(parts[:n])
                if target in packages and parts[n] in rules[target]:
                    if target != package:
                        uses[package].add(target)
                    break
    assert uses["exchange"] >= {p for p in packages if p.count(".") == 1} - {
        "exchange.labels", "exchange.token"}, "the entry point composes every concern"

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        for used in uses[package]:
            visit(used, (*path, package))

    for package in packages:
        visit(package, ())
