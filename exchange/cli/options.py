"""The options every command shares, and the settings they make.

A flag wins over its environment variable (``EXCHANGE_DATA_DIR``, ``EXCHANGE_PORT``,
``EXCHANGE_BASE_URL``, ``EXCHANGE_HOST``), which wins over the default of ``Settings``.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from exchange.cli.messages import fail
from exchange.config import Settings

DataOpt = Annotated[Path | None, typer.Option(
    "--data", show_default=False,
    help="Data directory [default: $EXCHANGE_DATA_DIR, else demo-data].")]
PortOpt = Annotated[int | None, typer.Option(
    "--port", min=1, max=65535, show_default=False,
    help="HTTP port [default: $EXCHANGE_PORT, else 8080].")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", show_default=False,
    help="Public base URL [default: $EXCHANGE_BASE_URL, else http://127.0.0.1:<port>].")]
HostOpt = Annotated[str | None, typer.Option(
    "--host", show_default=False,
    help="Address to bind [default: $EXCHANGE_HOST, else 127.0.0.1].")]

_FLAGS = {"data_dir": "--data", "port": "--port", "base_url": "--base-url", "host": "--host"}


def settings(data: Path | None = None, port: int | None = None, base_url: str | None = None,
             host: str | None = None) -> Settings:
    """The settings of this run; an invalid one is refused in one line (exit 2)."""
    given: dict[str, Any] = {"data_dir": data, "port": port, "base_url": base_url, "host": host}
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = (_FLAGS[field] if given.get(field) is not None
                else f"EXCHANGE_{field.upper()}" if field else "settings")
        message = str(problem["msg"]).removeprefix("Value error, ")
        fail(f"invalid {name}: {message}" if field else message, 2)
