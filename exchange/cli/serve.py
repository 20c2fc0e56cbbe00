"""``exchange serve``: run an existing exchange."""

import logging
import threading

import uvicorn

from exchange.app import create_app
from exchange.audit.witness import WitnessError
from exchange.cli.audit import publish_checkpoint
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console
from exchange.cli.options import BaseUrlOpt, DataOpt, HostOpt, PortOpt, settings
from exchange.cli.reindex import outdated_hint
from exchange.errors import ExchangeError
from exchange.services import Services

log = logging.getLogger("exchange.witness")


def serve(data: DataOpt = None, port: PortOpt = None, base_url: BaseUrlOpt = None,
          host: HostOpt = None) -> None:
    """Run the exchange of an existing data directory."""
    configured = settings(data, port, base_url, host)
    services = open_exchange(configured)
    console.print(f"Exchange at {configured.fhir_base} (data in {configured.data_dir})",
                  soft_wrap=True, highlight=False)
    hint = outdated_hint(services)
    if hint is not None:
        console.print(hint, soft_wrap=True, highlight=False)
    run(services)


PUBLISH_EVERY_SECONDS = 60.0


def run(services: Services) -> None:
    """Serve until interrupted, at the host and port of the services' settings; while
    serving, publish a checkpoint to the witness each minute the ledger grew."""
    configured = services.settings
    stop = threading.Event()
    publisher = threading.Thread(target=_witnessing, args=(services, stop), daemon=True)
    publisher.start()
    try:
        uvicorn.run(create_app(services=services), host=configured.host,
                    port=configured.port, log_level="warning")
    finally:
        stop.set()


def _witnessing(services: Services, stop: threading.Event) -> None:
    target = services.settings.witness_target
    if target is None:
        return
    published = services.ledger.size()
    while not stop.wait(PUBLISH_EVERY_SECONDS):
        try:
            # More than the entry of its own last publication: something to vouch for.
            if services.ledger.size() > published + 1:
                publish_checkpoint(services, target)
                published = services.ledger.size()
        except (WitnessError, ExchangeError) as exc:
            log.warning("checkpoint not published to the witness: %s", exc)
