"""HL7's own R4 examples pass the checker, and the generated data is what the generator makes
of the package it names.

The package (npm ``hl7.fhir.r4.examples`` 4.0.1, about 19 MB) is fetched with ``npm pack``
into pytest's cache directory once; without npm or the registry these tests are skipped.
"""

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from exchange.errors import InvalidResource
from exchange.fhir.conformance import check_conformance
from exchange.fhir.element_tree import element_tree
from exchange.fhir.references import LocalBases, restful
from exchange.fhir.search_params import SUPPORTED_TYPES
from exchange.fhir.spec import bindings_generation

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
TARBALL = "hl7.fhir.r4.examples-4.0.1.tgz"
# HL7's errors, not ours: the ImplementationGuide of R4 itself lists a SearchParameter
# whose id has 66 characters, and R4 ids have at most 64.
KNOWN_INVALID = {"ImplementationGuide-fhir.json", "ig-r4.json"}


@pytest.fixture(scope="module")
def tarball(request: pytest.FixtureRequest) -> Path:
    folder = request.config.cache.mkdir("hl7-r4-examples")
    path = folder / TARBALL
    if not path.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: HL7's package cannot be fetched")
        # Packed aside and moved in whole: test workers may fetch at the same time.
        with tempfile.TemporaryDirectory(dir=folder) as aside:
            done = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", aside],
                                  capture_output=True, timeout=600, check=False)
            if done.returncode != 0 or not (Path(aside) / TARBALL).exists():
                pytest.skip("npm could not fetch " + PACKAGE)
            os.replace(Path(aside) / TARBALL, path)
    return path


@pytest.fixture(scope="module")
def examples(tarball: Path) -> dict[str, dict[str, Any]]:
    found = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json") or name.startswith("."):
                continue
            handle = archive.extractfile(member)
            resource = json.loads(handle.read()) if handle else None
            if isinstance(resource, dict) and "resourceType" in resource:
                found[name] = resource
    return found


def test_the_package_is_the_one_the_data_names(tarball: Path) -> None:
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    assert element_tree().provenance["integrity"] == "sha512-" + base64.b64encode(
        digest).decode()


def test_the_generated_data_is_what_the_generator_makes(tarball: Path, tmp_path: Path) -> None:
    out = tmp_path / "required_bindings.json"
    bindings_generation.main([str(tarball), "--output", str(out)])
    assert out.read_bytes() == bindings_generation.OUTPUT.read_bytes(), \
        "regenerate with python -m exchange.fhir.spec.bindings_generation"


def _bases_of(node: Any) -> set[str]:
    """The bases of the absolute RESTful references in an example."""
    if isinstance(node, dict):
        ref = restful(node.get("reference"))
        own = {ref.base} if ref is not None and ref.base else set()
        return own.union(*(_bases_of(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_bases_of(v) for v in node))
    return set()


def test_hl7_examples_pass(examples: dict[str, dict[str, Any]],
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Each example as the server it was written on reads it: the bases its absolute
    references use are that server's. (To this exchange they are another server's, a
    rule of its own: see the next test.)"""
    refused: dict[str, str] = {}
    total = supported = supported_refused = 0
    for name, resource in examples.items():
        stored = resource["resourceType"] in SUPPORTED_TYPES
        total += 1
        supported += stored
        try:
            check_conformance(resource, here=LocalBases(frozenset(_bases_of(resource))))
        except InvalidResource as exc:
            refused[name] = f"{exc.expression[0]}: {exc.message}"
            supported_refused += stored
    with capsys.disabled():
        print(f"\nHL7 R4 examples: {total - len(refused)} of {total} pass; of the "
              f"{len(SUPPORTED_TYPES)} types the exchange stores, "
              f"{supported - supported_refused} of {supported}")
        for name, why in sorted(refused.items()):
            print(f"  refused {name}: {why}")
    assert total > 5000 and supported_refused == 0
    assert set(refused) == KNOWN_INVALID, refused


def test_hl7_examples_referring_to_other_servers_are_refused_for_that_alone(
        examples: dict[str, dict[str, Any]]) -> None:
    """To this exchange, an example's absolute reference is another server's: refused,
    naming the element, and for no other reason."""
    refused = {}
    for name, resource in examples.items():
        if resource["resourceType"] not in SUPPORTED_TYPES:
            continue
        try:
            check_conformance(resource)
        except InvalidResource as exc:
            assert exc.message.startswith("A reference to another server's record"), name
            assert exc.expression[0].endswith(".reference"), name
            refused[name] = exc.expression[0]
    assert refused.get("Coverage-9876B1.json") == "Coverage.policyHolder.reference"
    assert 0 < len(refused) < 10


def test_a_stored_type_example_still_fails_when_broken(
        examples: dict[str, dict[str, Any]]) -> None:
    """The examples pass because they are valid, not because the walk skips them."""
    obs = copy.deepcopy(examples["Observation-example.json"])
    obs["status"] = "unheard-of"
    with pytest.raises(InvalidResource):
        check_conformance(obs)
