"""``exchange init``: a new, empty exchange."""

import stat

from exchange.cli.administration import record_admin
from exchange.cli.data_dir import create_exchange, is_exchange, parts
from exchange.cli.messages import console, fail, this_command
from exchange.cli.options import DataOpt, settings


def init(data: DataOpt = None) -> None:
    """Create an empty exchange: a data directory with its keys and database.

    Nothing else creates a data directory, except ``exchange demo``.
    """
    configured = settings(data)
    if is_exchange(configured):
        fail(f"{configured.data_dir} is an exchange data directory already")
    services = create_exchange(configured)
    record_admin(services, "init", {})
    console.print(f"Created an empty exchange in {configured.data_dir}:", highlight=False)
    for path in parts(configured):
        mode = stat.S_IMODE(path.stat().st_mode)
        console.print(f"  {path}  (mode {mode:04o})", soft_wrap=True, highlight=False)
    if configured.database_url:
        console.print("  its database is the one EXCHANGE_DATABASE_URL names", highlight=False)
    console.print(f"Register a client: {this_command()} clients add ID --organization "
                  f"Organization/ID --kind clinic --purpose TREAT --generate-key "
                  f"--data {configured.data_dir}", soft_wrap=True, highlight=False)
