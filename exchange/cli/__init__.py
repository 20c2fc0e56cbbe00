"""The ``exchange`` command line: init, demo, serve, token, clients, residents, keys, audit.

Only ``init`` and ``demo`` create a data directory; every other command refuses a missing
one. Every command reads its data directory, port and base URL the same way (flag, then
``EXCHANGE_*`` environment variable, then the default). An expected mistake ends in one
line on standard error and a non-zero exit, never a traceback (see ``messages``).
"""

import typer

from exchange.cli import audit, clients, keys, residents
from exchange.cli.demo import demo
from exchange.cli.init import init
from exchange.cli.serve import serve
from exchange.cli.token import token

app = typer.Typer(help="Community health exchange.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.command()(init)
app.command()(demo)
app.command()(serve)
app.command()(token)
app.add_typer(clients.app, name="clients")
app.add_typer(residents.app, name="residents")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")


def main() -> None:
    app()
