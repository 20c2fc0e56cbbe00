"""``exchange audit verify|publish|checkpoint|prove|replay``: the audit ledger."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from exchange.audit.checkpoint import Checkpoint, CheckpointError, public_pem
from exchange.audit.merkle import ProofError, verify_inclusion
from exchange.audit.proofs import SignedCheckpoint
from exchange.audit.witness import CAVEAT, Witness, WitnessError
from exchange.cli.administration import record_admin
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console, fail, progress
from exchange.cli.options import DataOpt, settings
from exchange.errors import AuditUnavailable
from exchange.services import Services

app = typer.Typer(help="The audit ledger.", no_args_is_help=True)

EntryArg = Annotated[int, typer.Argument(help="The entry's sequence number.")]


class CheckpointAction(StrEnum):
    export = "export"


@app.command("verify")
def verify(data: DataOpt = None,
           witness: Annotated[Path | None, typer.Option(
               help="A checkpoint exported earlier; the ledger must still hold it.")] = None,
           start: Annotated[Path | None, typer.Option(
               "--from", help="A trusted checkpoint to verify onwards from.")] = None) -> None:
    """Recompute every leaf and the Merkle tree against all signed checkpoints."""
    services = open_exchange(settings(data))
    ledger = services.ledger
    notes = {}
    for name, path in (("witness", witness), ("start", start)):
        if path is None:
            continue
        try:
            notes[name] = ledger.open_checkpoint(path.read_text())
        except OSError as exc:
            fail(f"cannot read the {name} checkpoint {path}: {exc.strerror}", 2)
        except (CheckpointError, ValueError) as exc:
            fail(f"the {name} checkpoint {path} is not valid: {exc}")
    witnessed, from_checkpoint = notes.get("witness"), notes.get("start")
    caveat = None
    if witness is None:
        witnessed, caveat = _from_witness(services)
    size = ledger.size()
    with progress() as bar:
        task = bar.add_task("Verifying the audit ledger", total=size)
        report = ledger.verify(progress=lambda n: bar.update(task, completed=n),
                               witness=witnessed, start=from_checkpoint)
    # The operator's act and its outcome, in one entry, before the command reports.
    try:
        with ledger.operation():
            ledger.record_verification(report)
            record_admin(services, "audit-verify", {"ok": report.ok,
                                                    "checked": report.checked,
                                                    "witness": witnessed is not None})
    except AuditUnavailable:
        # Fail closed: an operator's act the ledger cannot record did not happen cleanly.
        fail(f"{'OK' if report.ok else 'TAMPERED'}: {report.checked} entries checked, but "
             "the ledger could not record this verification (is the database writable?)")
    if report.ok:
        console.print(f"OK: {report.checked} entries; the tree matches "
                      f"{report.checkpoints} signed checkpoint(s)"
                      + (f" and the witness at size {witnessed.size}" if witnessed else "")
                      + ".", style="green", soft_wrap=True)
        if caveat:
            console.print(f"Note: {caveat}.", style="yellow", highlight=False, soft_wrap=True)
        return
    console.print(f"TAMPERED: {report.problem} (verified {report.checked} before it).",
                  style="bold red")
    raise typer.Exit(1)


def _from_witness(services: Services) -> tuple[Checkpoint | None, str | None]:
    """The checkpoint the configured witness holds, or why there is none (the caveat)."""
    target = services.settings.witness_target
    if target is None:
        return None, CAVEAT
    try:
        note = Witness(target).latest()
    except WitnessError as exc:
        fail(str(exc))
    if note is None:
        return None, f"the witness {target} holds no checkpoint yet; until it does, {CAVEAT}"
    try:
        return services.ledger.open_checkpoint(note), None
    except (CheckpointError, ValueError) as exc:
        fail(f"the witness {target} holds no valid checkpoint of this ledger: {exc}")


def publish_checkpoint(services: Services, target: str) -> SignedCheckpoint:
    """Sign a checkpoint now, record that it is handed out, and hand it to the witness."""
    ledger = services.ledger
    with ledger.operation():  # the checkpoint, its mark and the entry: one commit
        signed = ledger.checkpoint()
        ledger.mark_exported(signed.checkpoint.size)
        record_admin(services, "audit-publish", {
            "size": signed.checkpoint.size,
            "witness": "url" if Witness(target).is_url else "file"})
    Witness(target).publish(signed.note)
    return signed


@app.command("publish")
def publish(data: DataOpt = None,
            to: Annotated[str | None, typer.Option(
                help="A file path or an http(s) URL; EXCHANGE_WITNESS if omitted.")] = None
            ) -> None:
    """Publish a signed checkpoint to a witness, which `audit verify` then checks."""
    services = open_exchange(settings(data))
    target = to or services.settings.witness_target
    if target is None:
        fail("no witness is set (EXCHANGE_WITNESS is none); say where with --to PATH|URL", 2)
    try:
        signed = publish_checkpoint(services, target)
    except WitnessError as exc:
        fail(str(exc))
    console.print(f"checkpoint of {signed.checkpoint.size} entries published to {target}",
                  highlight=False, soft_wrap=True)


@app.command("checkpoint")
def checkpoint(action: Annotated[CheckpointAction, typer.Argument()] = CheckpointAction.export,
               data: DataOpt = None,
               out: Annotated[Path | None, typer.Option(
                   help="File to write; standard output if omitted.")] = None) -> None:
    """Sign a checkpoint of the ledger now and export it for a witness to keep."""
    services = open_exchange(settings(data))
    if out is not None and not out.parent.is_dir():
        fail(f"no directory {out.parent} for {out.name}", 2)
    with services.ledger.operation():  # the checkpoint, its mark and the entry: one commit
        signed = services.ledger.checkpoint()
        services.ledger.mark_exported(signed.checkpoint.size)
        record_admin(services, "audit-checkpoint-export", {"size": signed.checkpoint.size})
    if out is None:
        typer.echo(signed.note, nl=False)
    else:
        out.write_text(signed.note)
        console.print(f"checkpoint of {signed.checkpoint.size} entries written to {out}",
                      highlight=False)


@app.command("prove")
def prove(entry: EntryArg, data: DataOpt = None) -> None:
    """Print an inclusion proof of one entry against the latest signed checkpoint."""
    services = open_exchange(settings(data))
    ledger = services.ledger
    leaf = ledger.leaf(entry)
    if leaf is None:
        _no_entry(services, entry)
    try:
        with ledger.operation():  # the checkpoint it signs commits with the operator's entry
            signed = ledger.checkpoint()
            record_admin(services, "audit-prove", {"entry": entry,
                                                   "size": signed.checkpoint.size})
        proof = ledger.inclusion_proof(entry, signed.checkpoint.size)
        verify_inclusion(entry - 1, signed.checkpoint.size, leaf, proof,
                         signed.checkpoint.root)
    except (AuditUnavailable, ProofError, ValueError):
        fail(f"entry {entry} cannot be proved: the ledger's tree is damaged or unreadable; "
             "`exchange audit verify` names what changed")
    typer.echo(json.dumps({
        "entry": entry, "leaf_index": entry - 1, "leaf_hash": leaf.hex(),
        "tree_size": signed.checkpoint.size, "root": signed.checkpoint.root.hex(),
        "proof": [p.hex() for p in proof], "checkpoint": signed.note,
        "public_key": public_pem(ledger.public_key)}, indent=2, ensure_ascii=False))


@app.command("replay")
def replay(entry: EntryArg, data: DataOpt = None) -> None:
    """Replay the decisions of an audit entry with the consent versions and policy
    revision they were made with; exit 1 if any answer differs."""
    services = open_exchange(settings(data))
    recorded = services.ledger.read(entry)
    if recorded is None:
        _no_entry(services, entry)
    results = services.replayer.replay(recorded)
    record_admin(services, "audit-replay", {"entry": entry,
                                            "same": all(r["same"] for r in results)})
    typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    if not all(r["same"] for r in results):
        raise typer.Exit(1)


def _no_entry(services: Services, entry: int) -> NoReturn:
    size = services.ledger.size()
    fail(f"no entry {entry} in the audit ledger"
         + (f" (it holds entries 1 to {size})" if size else " (it is empty)"))
