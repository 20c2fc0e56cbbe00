"""``exchange demo``: seed a synthetic community (once), then serve it."""

import shlex
from typing import Annotated

import typer

from exchange.cli.audit import publish_checkpoint
from exchange.cli.client_files import readdress
from exchange.cli.data_dir import create_exchange, is_exchange, open_exchange
from exchange.cli.messages import console, progress, this_command
from exchange.cli.options import BaseUrlOpt, DataOpt, HostOpt, PortOpt, settings
from exchange.cli.reindex import rebuild
from exchange.cli.serve import run
from exchange.services import Services


def demo(data: DataOpt = None, port: PortOpt = None, base_url: BaseUrlOpt = None,
         host: HostOpt = None,
         residents: Annotated[int, typer.Option(min=1, help="How many residents.")] = 300,
         serve_after: Annotated[bool, typer.Option("--serve/--no-serve",
                                                   help="Start serving after seeding.")] = True,
         ) -> None:
    """Seed a synthetic demo community (once), then serve it."""
    configured = settings(data, port, base_url, host)
    opened = open_exchange if is_exchange(configured) else create_exchange
    services = opened(configured)
    if services.registry.get("clinic-a") is None:
        _seed(services, residents)
    else:
        console.print(f"The demo community in {configured.data_dir} exists already; using it.",
                      highlight=False)
        moved = readdress(configured)
        if moved:
            console.print(f"The client files of {', '.join(moved)} now name "
                          f"{configured.token_url}.", soft_wrap=True, highlight=False)
        if not services.repository.index.current:  # written by an earlier version
            rebuild(services)
    _print_try_it(services)
    if serve_after:
        console.print(f"Serving {configured.fhir_base} — Ctrl-C stops.", highlight=False)
        run(services)


def _seed(services: Services, residents: int) -> None:
    # Imported here: the seed writes client files through this package (no import cycle).
    from exchange.demo.seed import seed_demo

    with progress() as bar:
        task = bar.add_task("Seeding residents", total=residents)
        summary = seed_demo(services, residents,
                            progress=lambda n: bar.update(task, completed=n))
    console.print(f"Seeded {summary.residents} residents, {summary.resources} resources, "
                  f"{summary.consents} consents; clients: {', '.join(summary.clients)}.",
                  soft_wrap=True)
    # A local witness from the start: a rollback of the ledger is caught out of the box.
    target = services.settings.witness_target
    if target is not None:
        signed = publish_checkpoint(services, target)
        console.print(f"Witness: a checkpoint of {signed.checkpoint.size} entries in {target} "
                      "(published each minute while serving).", soft_wrap=True,
                      highlight=False)


def _print_try_it(services: Services) -> None:
    exe, fhir = this_command(), services.settings.fhir_base
    data = shlex.quote(str(services.settings.data_dir))
    console.print("\nTry it (in another terminal):\n", style="bold")
    console.print(
        f'  TOKEN=$({exe} token --data {data} --client clinic-a --purpose TREAT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{fhir}/Patient?_count=2"\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" '
        f'"{fhir}/Observation?code=http://loinc.org|85354-9&_count=3&_sort=-date"\n'
        f'  INS=$({exe} token --data {data} --client insurer --purpose HPAYMT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $INS" "{fhir}/Claim?_count=2"\n'
        f'  HUB=$({exe} token --data {data} --client hub --purpose CAREMGT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $HUB" "{fhir}/Patient?_count=2"'
        f'   # pseudonymized, k-anonymous\n'
        f'  {exe} audit verify --data {data}\n', soft_wrap=True, highlight=False)
