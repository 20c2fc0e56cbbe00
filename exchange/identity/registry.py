"""The registry of backend clients: organizations, their keys, purposes and scopes."""

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from exchange.errors import DependencyUnavailable, InvalidRequest
from exchange.identity.scopes import Scope, parse_scopes
from exchange.store.tables import ClientRow

ORGANIZATION_KINDS = ("clinic", "insurer", "hub", "research", "compliance")


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    organization: str
    organization_kind: str
    jwks: dict[str, Any]
    purposes: tuple[str, ...]
    scopes: tuple[Scope, ...]
    active: bool

    def policy_view(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "active": self.active,
                "organization_kind": self.organization_kind,
                "purposes": list(self.purposes),
                "scopes": [s.policy_view() for s in self.scopes]}


class ClientRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, client_id: str, name: str, organization: str, organization_kind: str,
            jwks: dict[str, Any], purposes: list[str], scopes: str) -> Client:
        if organization_kind not in ORGANIZATION_KINDS:
            raise InvalidRequest(f"organization kind must be one of {ORGANIZATION_KINDS}")
        if not organization.startswith("Organization/"):
            raise InvalidRequest("organization must be a reference Organization/<id>")
        if not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            raise InvalidRequest("the client needs a JWK Set with at least one public key")
        if any("d" in key for key in jwks["keys"]):
            raise InvalidRequest("the JWK Set holds a private key; register the public one")
        row = ClientRow(client_id=client_id, name=name, organization=organization,
                        organization_kind=organization_kind, jwks=json.dumps(jwks),
                        purposes=" ".join(purposes), scopes=scopes, active=True)
        with Session(self._engine) as session:
            session.merge(row)
            session.commit()
        return _client(row)

    def get(self, client_id: str) -> Client | None:
        try:
            with Session(self._engine) as session:
                row = session.get(ClientRow, client_id)
        except SQLAlchemyError:
            raise DependencyUnavailable("The client registry is unavailable.") from None
        return None if row is None else _client(row)

    def list(self) -> list[Client]:
        with Session(self._engine) as session:
            rows = session.exec(select(ClientRow).order_by(ClientRow.client_id)).all()
        return [_client(r) for r in rows]

    def set_active(self, client_id: str, active: bool) -> None:
        with Session(self._engine) as session:
            row = session.get(ClientRow, client_id)
            if row is None:
                raise InvalidRequest("no such client")
            row.active = active
            session.add(row)
            session.commit()


def _client(row: ClientRow) -> Client:
    return Client(row.client_id, row.name, row.organization, row.organization_kind,
                  json.loads(row.jwks), tuple(row.purposes.split()),
                  tuple(parse_scopes(row.scopes)), row.active)
