"""``exchange serve``: run an existing exchange."""

import uvicorn

from exchange.app import create_app
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console
from exchange.cli.options import BaseUrlOpt, DataOpt, HostOpt, PortOpt, settings
from exchange.services import Services


def serve(data: DataOpt = None, port: PortOpt = None, base_url: BaseUrlOpt = None,
          host: HostOpt = None) -> None:
    """Run the exchange of an existing data directory."""
    configured = settings(data, port, base_url, host)
    services = open_exchange(configured)
    console.print(f"Exchange at {configured.fhir_base} (data in {configured.data_dir})",
                  soft_wrap=True, highlight=False)
    run(services)


def run(services: Services) -> None:
    """Serve until interrupted, at the host and port of the services' settings."""
    configured = services.settings
    uvicorn.run(create_app(services=services), host=configured.host, port=configured.port,
                log_level="warning")
