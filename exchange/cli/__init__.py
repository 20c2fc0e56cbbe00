"""The ``exchange`` command line: init, demo, serve, token, clients, residents, keys, audit,
reindex.

Only ``init`` and ``demo`` create a data directory; every other command refuses a missing
one. Every command reads its data directory, port and base URL the same way (flag, then
``EXCHANGE_*`` environment variable, then the default). An expected mistake ends in one
line on standard error and a non-zero exit, never a traceback (see ``messages``).
"""

from typing import NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from exchange.cli import audit, clients, keys, residents
from exchange.cli.demo import demo
from exchange.cli.init import init
from exchange.cli.messages import fail
from exchange.cli.reindex import reindex
from exchange.cli.serve import serve
from exchange.cli.token import token
from exchange.errors import ExchangeError

app = typer.Typer(help="Community health exchange.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.command()(init)
app.command()(demo)
app.command()(serve)
app.command()(token)
app.command()(reindex)
app.add_typer(clients.app, name="clients")
app.add_typer(residents.app, name="residents")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")


def main() -> None:
    """Run a command; what no command foresaw still ends in one line, never a traceback
    (a read-only database, a ledger that cannot record the act, a disk that is full)."""
    try:
        app()
    except ExchangeError as exc:
        _refuse(f"{exc.message} (nothing was done that the ledger did not record)")
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        _refuse(f"the database refused: {cause}; is the data directory writable?")
    except OSError as exc:
        _refuse(f"{exc.filename or 'a file'}: {exc.strerror or type(exc).__name__}")


def _refuse(message: str) -> NoReturn:
    """``fail`` outside a command (its typer.Exit would reach no one)."""
    try:
        fail(message)
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
