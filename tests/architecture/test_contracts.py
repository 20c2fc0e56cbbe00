"""The walls of the house plan hold, and would fail if someone crossed them.

Each case copies the source into a scratch tree, makes one deliberately wrong import and
runs import-linter on the copy with the project's own contracts.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, check=False,
                          timeout=120)


def _scratch(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in ("exchange", "consent", "adapters"):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_project_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


WRONG = [
    ("exchange/feeds/fhir_api.py", "from exchange.store.repository import ResourceRepository",
     "Routes and pages reach data only through the gate's public interface"),
    ("exchange/feeds/smart_api.py", "from exchange.gate.recording import Recorder",
     "Routes and pages reach data only through the gate's public interface"),
    ("exchange/web/pages.py", "from exchange.services import Services",
     "Routes and pages reach data only through the gate's public interface"),
    ("exchange/services.py", "from exchange.feeds import fhir_api",
     "One road: entry points over routes over the gate over what it composes"),
    ("exchange/store/repository.py", "from exchange.gate import Gate",
     "One road: entry points over routes over the gate over what it composes"),
    ("exchange/gate/reads.py", "from exchange.gate.writes import Writes",
     "The gate's operations share the road's phases, never each other"),
    ("consent/model.py", "import fastapi",
     "The consent domain knows no web framework, no store and no route"),
    ("exchange/gate/deciding.py", "from adapters.rego_embedded import RegoDecisionPoint",
     "Adapters are picked by the composition root only"),
]


@pytest.mark.parametrize(("module", "line", "contract"), WRONG,
                         ids=[w[0].rsplit("/", 1)[-1] + ":" + w[1].split()[1] for w in WRONG])
def test_a_wrong_import_breaks_its_contract(tmp_path: Path, module: str, line: str,
                                            contract: str) -> None:
    tree = _scratch(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
