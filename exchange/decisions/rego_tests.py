"""Run the ``*_test.rego`` files of a policy bundle with the embedded engine.

Each ``test_*`` rule must evaluate to ``true``; anything else (false, undefined, an error)
is a failure. Used by the test suite and by anyone editing policies.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import regorus

from exchange.decisions.bundle import load_bundle

_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)
_TEST = re.compile(r"^(test_\w+)\b", re.M)


@dataclass(frozen=True)
class RegoTestResult:
    name: str  # package.rule
    passed: bool
    detail: str = ""


def run_rego_tests(root: Path) -> list[RegoTestResult]:
    bundle = load_bundle(root)
    engine = regorus.Engine()
    for path, source in (*bundle.modules, *bundle.tests):
        engine.add_policy(path, source)
    engine.add_data_json(json.dumps(bundle.data))
    results: list[RegoTestResult] = []
    for _path, source in bundle.tests:
        package_match = _PACKAGE.search(source)
        if package_match is None:
            continue
        package = package_match.group(1)
        for name in dict.fromkeys(_TEST.findall(source)):
            rule = f"data.{package}.{name}"
            try:
                value = engine.eval_rule(rule)
            except RuntimeError as exc:
                results.append(RegoTestResult(f"{package}.{name}", False,
                                              str(exc).split("Stack backtrace")[0].strip()))
                continue
            results.append(RegoTestResult(f"{package}.{name}", value is True,
                                          "" if value is True else f"evaluated to {value!r}"))
    return results
