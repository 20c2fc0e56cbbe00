"""Fixtures of the ledger's unit tests: a database of its own for each test."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from exchange.store.database import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    yield engine
    engine.dispose()
