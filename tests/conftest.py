from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.community import Community, build_community


@pytest.fixture
def community(tmp_path: Path) -> Iterator[Community]:
    c = build_community(tmp_path)
    yield c
    c.services.engine.dispose()
