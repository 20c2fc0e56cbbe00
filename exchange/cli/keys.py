"""``exchange keys rotate``: key custody."""

from typing import Annotated

import typer

from exchange.cli.administration import record_admin
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console, progress
from exchange.cli.options import DataOpt, settings
from exchange.privacy.custody import rotate_keys

app = typer.Typer(help="Key custody.", no_args_is_help=True)


@app.command("rotate")
def rotate(retire: Annotated[bool, typer.Option(
               help="Destroy old key-encryption keys once nothing uses them.")] = False,
           data: DataOpt = None) -> None:
    """A new key-encryption key re-wraps every data key (content is not re-encrypted)."""
    services = open_exchange(settings(data))
    with progress() as bar:
        task = bar.add_task("Re-wrapping data keys", total=None)
        done = rotate_keys(services.keys,
                           lambda op, details: record_admin(services, op, details),
                           retire=retire,
                           progress=lambda n, total: bar.update(task, completed=n, total=total))
    console.print(f"{done.new_key} is primary; {done.rewrapped} data keys re-wrapped"
                  + (f"; retired {', '.join(done.retired)}" if done.retired else ""),
                  highlight=False)
