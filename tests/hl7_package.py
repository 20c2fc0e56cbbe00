"""HL7's R4 examples package (``hl7.fhir.r4.examples``: the specification's examples and
its definitions), fetched with ``npm pack`` once and kept in pytest's cache. Tests that
need it are skipped, saying why, where npm or the registry cannot be reached."""

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NAME, VERSION = "hl7.fhir.r4.examples", "4.0.1"


def fetch(cache: Path) -> Path:
    """The package's tarball, downloaded into ``cache`` if it is not there yet."""
    tarball = cache / f"{NAME}-{VERSION}.tgz"
    if tarball.exists():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: HL7's examples cannot be fetched")
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "pack", f"{NAME}@{VERSION}", "--pack-destination", str(cache)],
                          capture_output=True, timeout=600, check=False)
    if done.returncode != 0 or not tarball.exists():
        pytest.skip(f"npm pack {NAME} failed: {done.stderr.decode(errors='replace')[-200:]}")
    return tarball


def resources(tarball: Path, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every JSON file of the package whose name starts with
    ``prefix``."""
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json") or name == "package.json" \
                    or not name.startswith(prefix) or name.startswith("."):
                continue
            data = archive.extractfile(member)
            if data is not None:
                resource = json.loads(data.read())
                if isinstance(resource, dict) and "resourceType" in resource:
                    yield name, resource
