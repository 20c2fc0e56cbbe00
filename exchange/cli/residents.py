"""``exchange residents token|erase``: acts on one resident."""

from typing import Annotated, NoReturn

import typer

from exchange.cli.administration import context, operator
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console, fail
from exchange.cli.options import BaseUrlOpt, DataOpt, PortOpt, settings
from exchange.privacy.custody import erase_resident
from exchange.services import Services

app = typer.Typer(help="Residents.", no_args_is_help=True)

PatientArg = Annotated[str, typer.Argument(help="The resident's Patient id.")]


@app.command("token")
def token(patient_id: PatientArg, data: DataOpt = None, port: PortOpt = None,
          base_url: BaseUrlOpt = None) -> None:
    """A resident's session token (what the portal's login will issue), for the exchange
    at the configured address."""
    services = open_exchange(settings(data, port, base_url))
    state = services.repository.current("Patient", patient_id)
    if state is None or state.deleted:
        _no_resident(services, patient_id)
    # Who issued a session for whom, in the resident's own history, before it is shown.
    with services.gate.recording(context("residents token"), operator(), "token",
                                 {"type": "Patient", "id": patient_id}) as draft:
        draft.residents.add(patient_id)
        issued = services.tokens.issue_resident(patient_id)
    typer.echo(issued)
    typer.echo(f"a session token of Patient/{patient_id} for {services.settings.fhir_base}",
               err=True)


@app.command("erase")
def erase(patient_id: PatientArg,
          yes: Annotated[bool, typer.Option("--yes", help="Confirm.")] = False,
          data: DataOpt = None) -> None:
    """Erase a resident (crypto-shredding): their data key is destroyed in the key store,
    so every copy of their records, backups of the database included, is unreadable; the
    audit trail keeps the fact."""
    if not yes:
        fail("erasure cannot be undone; run again with --yes", 2)
    services = open_exchange(settings(data))
    if services.repository.current("Patient", patient_id) is None:
        _no_resident(services, patient_id)
    with services.gate.recording(context("residents erase"), operator(), "erase",
                                 {"type": "Patient", "id": patient_id}) as draft:
        done = erase_resident(services.repository, services.vault, patient_id)
        services.decider.invalidate(patient_id)
        draft.residents.add(patient_id)
        draft.details.update(resources=done.resources, versions=done.versions)
    console.print(f"erased {patient_id}: {done.resources} resources, {done.versions} versions; "
                  "their data key is destroyed", highlight=False)


def _no_resident(services: Services, patient_id: str) -> NoReturn:
    fail(f"no resident Patient/{patient_id} in {services.settings.data_dir} "
         "(never registered, or erased)")
