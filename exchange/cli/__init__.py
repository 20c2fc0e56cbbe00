"""The ``exchange`` command line: serve, demo, clients, audit, token."""

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.app import build_services, create_app
from exchange.audit.checkpoint import CheckpointError, public_pem
from exchange.audit.merkle import verify_inclusion
from exchange.config import Settings
from exchange.errors import ExchangeError
from exchange.gate import RequestContext, request_id
from exchange.identity.assertion import make_assertion
from exchange.identity.model import Identity
from exchange.privacy.custody import erase_resident, rotate_keys
from exchange.services import Services

app = typer.Typer(help="Community health exchange.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
clients_app = typer.Typer(help="Registered backend clients.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit ledger.", no_args_is_help=True)
residents_app = typer.Typer(help="Residents.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")
app.add_typer(residents_app, name="residents")
keys_app = typer.Typer(help="Key custody.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory.")]
PortOpt = Annotated[int, typer.Option("--port", help="HTTP port.")]


def _settings(data: Path, port: int = 8080) -> Settings:
    base = os.environ.get("EXCHANGE_BASE_URL") or f"http://127.0.0.1:{port}"
    return Settings(data_dir=data, base_url=base)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@app.command()
def serve(data: DataOpt = Path("data"), port: PortOpt = 8080,
          host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1") -> None:
    """Run the exchange."""
    settings = _settings(data, port)
    console.print(f"Exchange at {settings.fhir_base} (data in {data})")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def demo(data: DataOpt = Path("demo-data"), port: PortOpt = 8080,
         residents: Annotated[int, typer.Option(help="How many residents.")] = 300,
         serve_after: Annotated[bool, typer.Option("--serve/--no-serve",
                                                   help="Start serving after seeding.")] = True,
         host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1") -> None:
    """Seed a synthetic demo community (once), then serve it."""
    from exchange.demo.seed import seed_demo

    settings = _settings(data, port)
    services = build_services(settings)
    if services.registry.get("clinic-a") is None:
        with _progress() as bar:
            task = bar.add_task("Seeding residents", total=residents)
            summary = seed_demo(services, residents,
                                progress=lambda n: bar.update(task, completed=n))
        console.print(f"Seeded {summary.residents} residents, {summary.resources} resources, "
                      f"{summary.consents} consents; clients: {', '.join(summary.clients)}.")
    else:
        console.print(f"The demo community in {data} exists already; using it.")
    exe = _this_command()
    console.print("\nTry it (in another terminal):\n", style="bold")
    console.print(
        f'  TOKEN=$({exe} token --data {data} --client clinic-a --purpose TREAT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" '
        f'"{settings.fhir_base}/Patient?_count=2"\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" '
        f'"{settings.fhir_base}/Observation?code=http://loinc.org|85354-9&_count=3'
        f'&_sort=-date"\n'
        f'  INS=$({exe} token --data {data} --client insurer --purpose HPAYMT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $INS" "{settings.fhir_base}/Claim?_count=2"\n'
        f'  HUB=$({exe} token --data {data} --client hub --purpose CAREMGT '
        f'--scope "system/*.rs")\n'
        f'  curl -s -H "Authorization: Bearer $HUB" "{settings.fhir_base}/Patient?_count=2"'
        f'   # pseudonymized, k-anonymous\n'
        f'  {exe} audit verify --data {data}\n', soft_wrap=True, highlight=False)
    if serve_after:
        console.print(f"Serving {settings.fhir_base} — Ctrl-C stops.")
        uvicorn.run(create_app(services=services), host=host, port=port, log_level="warning")


@app.command()
def token(client: Annotated[str, typer.Option(help="Client id.")],
          data: DataOpt = Path("demo-data"),
          purpose: Annotated[str, typer.Option(help="Purpose of use.")] = "TREAT",
          scope: Annotated[str, typer.Option(help="SMART scopes.")] = "system/*.rs",
          url: Annotated[str | None, typer.Option(help="Token URL.")] = None) -> None:
    """Act as a registered client: sign an assertion, get an access token, print it."""
    info = json.loads((data / "clients" / f"{client}.json").read_text())
    pem = (data / "clients" / info["private_key"]).read_bytes()
    token_url = url or info["token_url"]
    assertion = make_assertion(client, pem, info["alg"], info["kid"], token_url)
    try:
        response = httpx.post(token_url, data={
            "grant_type": "client_credentials", "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "scope": scope, "purpose_of_use": purpose}, timeout=10)
    except httpx.HTTPError as exc:
        console.print(f"cannot reach the exchange at {token_url} ({exc}); is it serving? "
                      f"({_this_command()} serve --data {data})", style="red")
        raise typer.Exit(2) from None
    if response.status_code != 200:
        console.print(f"refused: {response.text}", style="red")
        raise typer.Exit(1)
    typer.echo(response.json()["access_token"])


@clients_app.command("add")
def clients_add(client_id: Annotated[str, typer.Argument()],
                organization: Annotated[str, typer.Option(help="Organization/<id>")],
                kind: Annotated[str, typer.Option(help="clinic, insurer or hub")],
                jwks: Annotated[Path, typer.Option(help="File with the public JWK Set.")],
                purpose: Annotated[list[str], typer.Option(help="Registered purpose.")],
                scopes: Annotated[str, typer.Option(help="Registered scopes.")] = "system/*.rs",
                name: Annotated[str, typer.Option(help="Display name.")] = "",
                data: DataOpt = Path("data")) -> None:
    """Register a backend client with its public key."""
    services = build_services(_settings(data))
    try:
        services.registry.add(client_id, name or client_id, organization, kind,
                              json.loads(jwks.read_text()), purpose, scopes)
    except ExchangeError as exc:
        console.print(exc.message, style="red")
        raise typer.Exit(2) from None
    _record_admin(services, "clients-add", {"client_id": client_id, "organization": organization,
                                            "kind": kind, "purposes": purpose,
                                            "scopes": scopes})
    console.print(f"registered {client_id}")


@clients_app.command("list")
def clients_list(data: DataOpt = Path("data")) -> None:
    """List registered clients."""
    services = build_services(_settings(data))
    for c in services.registry.list():
        state = "active" if c.active else "inactive"
        typer.echo(f"{c.client_id}\t{c.organization}\t{c.organization_kind}\t"
                   f"{','.join(c.purposes)}\t{' '.join(s.text for s in c.scopes)}\t{state}")


@audit_app.command("verify")
def audit_verify(data: DataOpt = Path("data"),
                 witness: Annotated[Path | None, typer.Option(
                     help="A checkpoint exported earlier; the ledger must still hold it.")]
                 = None,
                 start: Annotated[Path | None, typer.Option(
                     "--from", help="A trusted checkpoint to verify onwards from.")]
                 = None) -> None:
    """Recompute every leaf and the Merkle tree against all signed checkpoints."""
    services = build_services(_settings(data))
    ledger = services.ledger
    notes = {}
    for name, path in (("witness", witness), ("start", start)):
        if path is None:
            continue
        try:
            notes[name] = ledger.open_checkpoint(path.read_text())
        except (CheckpointError, OSError) as exc:
            console.print(f"The {name} checkpoint is not valid: {exc}", style="bold red")
            raise typer.Exit(1) from None
    witnessed, from_checkpoint = notes.get("witness"), notes.get("start")
    size = ledger.size()
    with _progress() as bar:
        task = bar.add_task("Verifying the audit ledger", total=size)
        report = ledger.verify(progress=lambda n: bar.update(task, completed=n),
                               witness=witnessed, start=from_checkpoint)
    ledger.record_verification(report)
    if report.ok:
        console.print(f"OK: {report.checked} entries; the tree matches "
                      f"{report.checkpoints} signed checkpoint(s)"
                      + (f" and the witness at size {witnessed.size}" if witnessed else "")
                      + ".", style="green")
        return
    console.print(f"TAMPERED: {report.problem} (verified {report.checked} before it).",
                  style="bold red")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(action: Annotated[str, typer.Argument(help="export")] = "export",
                     data: DataOpt = Path("data"),
                     out: Annotated[Path | None, typer.Option(
                         help="File to write; standard output if omitted.")] = None) -> None:
    """Sign a checkpoint of the ledger now and export it for a witness to keep."""
    if action != "export":
        console.print("usage: exchange audit checkpoint export [--out FILE]", style="red")
        raise typer.Exit(2)
    services = build_services(_settings(data))
    signed = services.ledger.checkpoint()
    services.ledger.mark_exported(signed.checkpoint.size)
    _record_admin(services, "audit-checkpoint-export", {"size": signed.checkpoint.size})
    if out is None:
        typer.echo(signed.note, nl=False)
    else:
        out.write_text(signed.note)
        console.print(f"checkpoint of {signed.checkpoint.size} entries written to {out}")


@audit_app.command("prove")
def audit_prove(entry: Annotated[int, typer.Argument(help="The entry's sequence number.")],
                data: DataOpt = Path("data")) -> None:
    """Print an inclusion proof of one entry against the latest signed checkpoint."""
    services = build_services(_settings(data))
    ledger = services.ledger
    signed = ledger.checkpoint()
    leaf = ledger.leaf(entry)
    if leaf is None or entry > signed.checkpoint.size:
        console.print(f"no entry {entry} in the checkpointed ledger", style="red")
        raise typer.Exit(1)
    proof = ledger.inclusion_proof(entry, signed.checkpoint.size)
    verify_inclusion(entry - 1, signed.checkpoint.size, leaf, proof, signed.checkpoint.root)
    typer.echo(json.dumps({
        "entry": entry, "leaf_index": entry - 1, "leaf_hash": leaf.hex(),
        "tree_size": signed.checkpoint.size, "root": signed.checkpoint.root.hex(),
        "proof": [p.hex() for p in proof], "checkpoint": signed.note,
        "public_key": public_pem(ledger.public_key)}, indent=2, ensure_ascii=False))


@audit_app.command("replay")
def audit_replay(entry: Annotated[int, typer.Argument(help="The entry's sequence number.")],
                 data: DataOpt = Path("data")) -> None:
    """Replay the decisions of an audit entry with the consent versions and policy
    revision they were made with; exit 1 if any answer differs."""
    services = build_services(_settings(data))
    recorded = services.ledger.read(entry)
    if recorded is None:
        console.print(f"no entry {entry}", style="red")
        raise typer.Exit(1)
    results = services.replayer.replay(recorded)
    typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    if not all(r["same"] for r in results):
        raise typer.Exit(1)


@residents_app.command("erase")
def residents_erase(patient_id: Annotated[str, typer.Argument()],
                    yes: Annotated[bool, typer.Option("--yes", help="Confirm.")] = False,
                    data: DataOpt = Path("data")) -> None:
    """Erase a resident (crypto-shredding): their data key is destroyed, so every copy of
    their records, backups included, is unreadable; the audit trail keeps the fact."""
    if not yes:
        console.print("Erasure cannot be undone; run again with --yes.", style="red")
        raise typer.Exit(2)
    services = build_services(_settings(data))
    ctx = RequestContext(request_id(), None, "CLI", "exchange residents erase")
    operator = Identity("operator", getpass.getuser())
    with services.gate.recording(ctx, operator, "erase",
                                 {"type": "Patient", "id": patient_id}) as draft:
        done = erase_resident(services.repository, services.vault, patient_id)
        services.decider.invalidate(patient_id)
        draft.residents.add(patient_id)
        draft.details.update(resources=done.resources, versions=done.versions)
    console.print(f"erased {patient_id}: {done.resources} resources, {done.versions} versions; "
                  "their data key is destroyed")


@keys_app.command("rotate")
def keys_rotate(retire: Annotated[bool, typer.Option(
                    help="Destroy old key-encryption keys once nothing uses them.")] = False,
                data: DataOpt = Path("data")) -> None:
    """A new key-encryption key re-wraps every data key (content is not re-encrypted)."""
    services = build_services(_settings(data))
    with _progress() as bar:
        task = bar.add_task("Re-wrapping data keys", total=None)
        done = rotate_keys(services.engine, services.keys,
                           lambda op, details: _record_admin(services, op, details),
                           retire=retire,
                           progress=lambda n, total: bar.update(task, completed=n, total=total))
    console.print(f"{done.new_key} is primary; {done.rewrapped} data keys re-wrapped"
                  + (f"; retired {', '.join(done.retired)}" if done.retired else ""))


@residents_app.command("token")
def residents_token(patient_id: Annotated[str, typer.Argument()],
                    data: DataOpt = Path("demo-data"), port: PortOpt = 8080) -> None:
    """A resident's session token (what the portal's login will issue)."""
    services = build_services(_settings(data, port))
    typer.echo(services.tokens.issue_resident(patient_id))


def _record_admin(services: Services, operation: str, details: dict[str, object]) -> None:
    """An administrative act is recorded like any other: before the command reports done."""
    ctx = RequestContext(request_id(), None, "CLI", f"exchange {operation}")
    operator = Identity("operator", getpass.getuser())
    with services.gate.recording(ctx, operator, "administration",
                                 {"operation": operation, **details}):
        pass


def _this_command() -> str:
    """How the user can run this command again from here (``.venv/bin/exchange``)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "exchange" and argv0.exists():
        try:
            return str(argv0.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(argv0)
    return "exchange"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
