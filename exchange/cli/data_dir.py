"""The data directory: ``exchange init`` and ``exchange demo`` create one; every other
command opens an existing one or refuses, and creates nothing.

An exchange data directory holds (unless ``EXCHANGE_DATABASE_URL`` names another
database) its SQLite database; its key directory, apart from it (``EXCHANGE_KEY_DIR``,
by default ``<data>-keys``), holds its key file, its key store (every wrapped data key)
and its two signing keys. Without them it is not an exchange: opening it would quietly
make a new, empty exchange with new keys, whose audit ledger would verify as "OK: 0
entries". (An exchange made before the key store kept its data keys in the database:
its key file says so, and opening it moves them, recorded as ``keys move``.)
"""

import json
import os
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from exchange.app import build_services
from exchange.cli.administration import record_admin
from exchange.cli.messages import fail
from exchange.config import Settings
from exchange.errors import ExchangeError
from exchange.services import Services

KEY_FILE = "keys.json"
KEY_STORE = "data-keys.db"
SIGNING_KEYS = ("audit-signing-key.pem", "token-signing-key.pem")
DATABASE = "exchange.db"


def parts(settings: Settings) -> list[Path]:
    """The files that make an exchange: its keys and (on SQLite) its database."""
    keys = [KEY_FILE, *([KEY_STORE] if _has_key_store(settings) else []), *SIGNING_KEYS]
    return [settings.keys_dir / name for name in keys] + \
        ([] if settings.database_url else [settings.data_dir / DATABASE])


def _has_key_store(settings: Settings) -> bool:
    """Whether this exchange keeps its data keys in a key store: every new one does, and
    one whose key file is of format 1 kept them in its database until it is opened."""
    try:
        return int(json.loads((settings.keys_dir / KEY_FILE).read_text()).get("format", 1)) >= 2
    except FileNotFoundError:
        return True
    except (OSError, ValueError, TypeError, AttributeError):
        return True  # an unreadable key file is refused when it is opened


def missing(settings: Settings) -> list[str]:
    return [str(p) if p.parent != settings.data_dir else p.name
            for p in parts(settings) if not p.is_file()]


def is_exchange(settings: Settings) -> bool:
    return settings.data_dir.is_dir() and not missing(settings)


def require(settings: Settings) -> None:
    """Refuse unless ``settings.data_dir`` is an exchange data directory."""
    data = settings.data_dir
    if not data.exists():
        fail(f"no data directory {data}; create one with `exchange init --data {data}` "
             f"(empty) or `exchange demo --data {data}` (a synthetic community)")
    if not data.is_dir():
        fail(f"{data} is not a directory")
    absent = missing(settings)
    if absent:
        fail(f"{data} is not an exchange data directory (it has no {', '.join(absent)})")


def open_exchange(settings: Settings) -> Services:
    """The services of an existing exchange, or a one-line refusal."""
    require(settings)
    return _build(settings)


def create_exchange(settings: Settings) -> Services:
    """A new exchange in a new or empty directory (mode 0700): keys, database, signing
    keys. Refuses a directory that holds anything else."""
    data = settings.data_dir
    if data.exists():
        if not data.is_dir():
            fail(f"{data} is not a directory")
        if any(data.iterdir()):
            absent = missing(settings)
            if len(absent) < len(parts(settings)):
                fail(f"{data} is an incomplete exchange data directory "
                     f"(it has no {', '.join(absent)})")
            fail(f"{data} is not empty and not an exchange data directory; "
                 "choose a new or empty one")
    else:
        try:
            os.makedirs(data, mode=0o700)
        except OSError as exc:
            fail(f"cannot create {data}: {exc.strerror}")
    keys = settings.keys_dir
    if keys.exists() and (not keys.is_dir() or any(keys.iterdir())):
        fail(f"the key directory {keys} is not new or empty; choose another "
             "(EXCHANGE_KEY_DIR)")
    try:
        os.makedirs(keys, mode=0o700, exist_ok=True)
        keys.chmod(0o700)
    except OSError as exc:
        fail(f"cannot create the key directory {keys}: {exc.strerror}")
    return _build(settings)


def _build(settings: Settings) -> Services:
    data = settings.data_dir
    try:
        services = build_services(settings)
        moved = services.vault.adoption
        if moved is not None:
            record_admin(services, "keys move", {"found": moved.found, "moved": moved.moved,
                                                 "retired": moved.retired})
            typer.echo(f"moved {moved.moved} data keys out of the database into "
                       f"{settings.keys_dir / KEY_STORE}"
                       + (f"; retired {', '.join(moved.retired)}" if moved.retired else ""),
                       err=True)
        return services
    except ExchangeError as exc:
        fail(f"cannot open the exchange in {data}: {exc.message}")
    except SQLAlchemyError as exc:
        cause = type(exc.orig or exc).__name__ if hasattr(exc, "orig") else type(exc).__name__
        fail(f"cannot open the exchange's database in {data} ({cause})")
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"cannot open the exchange in {data}: {first}")
