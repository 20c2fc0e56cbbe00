from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.community import Community, build_community


@pytest.fixture
def community(tmp_path: Path) -> Iterator[Community]:
    c = build_community(tmp_path)
    yield c
    c.services.engine.dispose()


@pytest.fixture
def small_k_community(tmp_path: Path) -> Iterator[Community]:
    """The three-resident community with the k-anonymity guard at k=1, for tests of what
    a pseudonymized record looks like (k=11 would rightly suppress all three)."""
    c = build_community(tmp_path, k_anonymity=1)
    yield c
    c.services.engine.dispose()


@pytest.fixture(scope="session")
def hl7_examples(request: pytest.FixtureRequest) -> Path:
    """The tarball of HL7's R4 examples and definitions (tests/hl7_package.py)."""
    from tests.hl7_package import fetch

    cache = request.config.cache
    assert cache is not None
    return fetch(Path(cache.mkdir("hl7")))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for this session (tests/postgres.py), or a skip."""
    from tests.postgres import cluster

    with cluster() as url:
        yield url
