"""The ``Identity`` every request on the road carries."""

from dataclasses import dataclass, field
from typing import Any, Literal

from exchange.identity.scopes import Scope


@dataclass(frozen=True)
class Identity:
    kind: Literal["client", "resident", "proxy", "operator"]
    subject: str  # client id, the resident's Patient id, or the operator's login name
    organization: str | None = None  # "Organization/clinic-a"
    organization_kind: str | None = None  # clinic | insurer | hub
    scopes: tuple[Scope, ...] = field(default_factory=tuple)
    purpose: str | None = None
    token_id: str | None = None
    acting_for: str | None = None  # a proxy's resident
    delegation: dict[str, Any] | None = None  # a proxy's rights and period

    @property
    def resident(self) -> str | None:
        """Whose record this identity is confined to, if any."""
        if self.kind == "resident":
            return self.subject
        return self.acting_for if self.kind == "proxy" else None

    def policy_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "kind": self.kind,
            "scopes": [s.policy_view() for s in self.scopes],
            "purpose": self.purpose,
        }
        if self.kind == "client":
            view.update(client_id=self.subject, organization=self.organization,
                        organization_kind=self.organization_kind)
        elif self.kind == "proxy":
            view.update(proxy=self.subject, resident=self.acting_for,
                        delegation=self.delegation)
        else:
            view["resident"] = self.subject
        return view

    @property
    def role(self) -> str:
        return self.organization_kind or "unknown" if self.kind == "client" else self.kind

    def audit_view(self) -> dict[str, Any]:
        view = {"kind": self.kind, "subject": self.subject, "organization": self.organization,
                "role": self.role, "purpose": self.purpose}
        if self.acting_for:
            view["acting_for"] = self.acting_for
        return view
