"""``exchange clients add|list``: the registered backend clients."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from exchange.cli.administration import record_admin
from exchange.cli.client_files import ClientFileError, remove_client, write_client
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console, fail, this_command
from exchange.cli.options import DataOpt, settings
from exchange.errors import ExchangeError
from exchange.identity.assertion import ALGORITHMS

app = typer.Typer(help="Registered backend clients.", no_args_is_help=True)


@app.command("add")
def add(client_id: Annotated[str, typer.Argument()],
        organization: Annotated[str, typer.Option(help="Organization/<id>")],
        kind: Annotated[str, typer.Option(help="clinic, insurer, hub, research or compliance")],
        purpose: Annotated[list[str], typer.Option(help="Registered purpose.")],
        jwks: Annotated[Path | None, typer.Option(
            help="File with the client's public JWK Set.")] = None,
        generate_key: Annotated[bool, typer.Option(
            "--generate-key", help="Make the key pair here: the private key into "
            "clients/<id>.pem (or --key-out), the public key registered.")] = False,
        key_out: Annotated[Path | None, typer.Option(
            help="With --generate-key: where to write the private key.")] = None,
        alg: Annotated[str, typer.Option(
            help=f"With --generate-key: the algorithm, one of {', '.join(ALGORITHMS)}.")]
        = "ES384",
        scopes: Annotated[str, typer.Option(help="Registered scopes.")] = "system/*.rs",
        name: Annotated[str, typer.Option(help="Display name.")] = "",
        data: DataOpt = None) -> None:
    """Register a backend client with its public key (from --jwks, or --generate-key)."""
    if generate_key == (jwks is not None):
        fail("give the client's public keys with --jwks FILE, or --generate-key", 2)
    if key_out is not None and not generate_key:
        fail("--key-out goes with --generate-key", 2)
    if alg not in ALGORITHMS:
        fail(f"--alg must be one of {', '.join(ALGORITHMS)}", 2)
    configured = settings(data)
    public = _read_jwks(jwks) if jwks is not None else None
    services = open_exchange(configured)
    written = None
    if public is None:
        try:
            written, jwk = write_client(configured, client_id, alg, purpose, scopes, key_out)
        except ClientFileError as exc:
            fail(exc.message)
        public = {"keys": [jwk]}
    try:
        services.registry.add(client_id, name or client_id, organization, kind, public,
                              purpose, scopes)
    except ExchangeError as exc:
        if written is not None:
            remove_client(written)
        fail(exc.message, 2)
    record_admin(services, "clients-add", {"client_id": client_id, "organization": organization,
                                           "kind": kind, "purposes": purpose, "scopes": scopes})
    console.print(f"registered {client_id}", highlight=False)
    if written is not None:
        console.print(f"its private key (keep it secret; the exchange keeps only the public "
                      f"one) is in {written.private_key}, mode 0600; its client file is "
                      f"{written.path}.\nA token: {this_command()} token --data "
                      f"{configured.data_dir} --client {client_id} --purpose {purpose[0]}",
                      soft_wrap=True, highlight=False)


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    except ValueError:
        fail(f"{path} is not JSON (a JWK Set is expected)", 2)
    if not isinstance(value, dict):
        fail(f"{path} is not a JWK Set", 2)
    return value


@app.command("list")
def list_clients(data: DataOpt = None) -> None:
    """List registered clients."""
    services = open_exchange(settings(data))
    for c in services.registry.list():
        state = "active" if c.active else "inactive"
        typer.echo(f"{c.client_id}\t{c.organization}\t{c.organization_kind}\t"
                   f"{','.join(c.purposes)}\t{' '.join(s.text for s in c.scopes)}\t{state}")
