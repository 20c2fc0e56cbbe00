"""Tables. Resource content is stored only as ciphertext; indexes hold keyed hashes.

No ``from __future__ import annotations`` here: SQLModel reads the annotations at runtime.
"""

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, LargeBinary
from sqlmodel import Field, SQLModel


def _utc_column(*, index: bool = False, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), index=index, nullable=nullable)


class ResourceRow(SQLModel, table=True):
    """One version of one resource. ``content`` is an envelope (see privacy.envelope)."""

    __tablename__ = "resource"
    __table_args__ = (
        # (type, id) lookups use the primary key; these serve searches and compartments.
        Index("ix_resource_type_patient", "resource_type", "patient_id", "is_current"),
        Index("ix_resource_patient", "patient_id", "resource_type", "is_current"),
    )

    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(primary_key=True)
    is_current: bool = True
    deleted: bool = False
    # The resident whose record this is (Patient compartment); None for directory resources.
    patient_id: str | None = Field(default=None, max_length=64)
    # For a record of no resident outside the directory: the organization it is held for,
    # whose client wrote it (policies/exchange/held); None otherwise.
    holder: str | None = Field(default=None, max_length=128)
    last_updated: datetime = Field(sa_column=_utc_column(index=True))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TermIndex(SQLModel, table=True):
    """Token and string search terms of current versions, as keyed hashes (blind index),
    each keyed by the resident whose record it is (``exchange.privacy.blind_index``)."""

    __tablename__ = "term_index"
    __table_args__ = (
        Index("ix_term_lookup", "resource_type", "param", "term"),
        Index("ix_term_owner", "resource_type", "resource_id"),
    )

    row: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=64)
    term: str = Field(max_length=64)


class DateIndex(SQLModel, table=True):
    """Dates of current versions as UTC ranges [low, high); a person-level date (a birth
    date) only as the span of years that holds it (``exchange.store.indexing``)."""

    __tablename__ = "date_index"
    __table_args__ = (
        Index("ix_date_lookup", "resource_type", "param", "low", "high"),
        # By record first (a rewrite deletes a record's rows by it), then parameter and
        # date: a sort by date reads each match's own dates through it, where the
        # planner had scanned every record's dates of the parameter for each match.
        Index("ix_date_of_record", "resource_type", "resource_id", "param", "low"),
    )

    row: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=64)
    low: datetime = Field(sa_column=_utc_column())
    high: datetime = Field(sa_column=_utc_column())


class ReferenceIndex(SQLModel, table=True):
    __tablename__ = "reference_index"
    __table_args__ = (
        Index("ix_reference_lookup", "resource_type", "param", "target"),
        Index("ix_reference_owner", "resource_type", "resource_id"),
        Index("ix_reference_target", "target"),
    )

    row: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=64)
    target: str = Field(max_length=140)


class IndexFormRow(SQLModel, table=True):
    """The form the search indexes were written in (``exchange.store.indexing.INDEX_FORM``):
    a store indexed in an earlier form is rebuilt (``exchange reindex``) before it is
    searched again. No row in a store that holds records: the first form."""

    __tablename__ = "index_form"

    form: int = Field(primary_key=True)


class ClientRow(SQLModel, table=True):
    """A registered backend client (clinic, insurer, hub) and its public key."""

    __tablename__ = "client"

    client_id: str = Field(primary_key=True, max_length=128)
    name: str
    organization: str = Field(max_length=140)
    organization_kind: str = Field(max_length=32)
    jwks: str
    purposes: str
    scopes: str
    active: bool = True


class UsedAssertion(SQLModel, table=True):
    """``jti`` values of accepted client assertions, kept until they expire."""

    __tablename__ = "used_assertion"

    client_id: str = Field(primary_key=True, max_length=128)
    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(sa_column=_utc_column(index=True))


class AuditRow(SQLModel, table=True):
    """One ledger entry: encrypted content and its Merkle leaf hash (RFC 6962)."""

    __tablename__ = "audit_entry"

    __table_args__ = (
        Index("ix_audit_resident", "resident", "seq"),
        Index("ix_audit_organization", "organization", "seq"),
    )

    seq: int = Field(primary_key=True)  # 1-based; the Merkle leaf index is seq - 1
    recorded_at: datetime = Field(sa_column=_utc_column(index=True))
    leaf: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Filters for the compliance views, copied from the entry. They are not covered by the
    # tree: every view re-checks them against the decrypted, tree-covered content.
    action: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=16)
    resident: str | None = Field(default=None, max_length=64)
    organization: str | None = Field(default=None, max_length=140)
    purpose: str | None = Field(default=None, max_length=16)


class AuditNode(SQLModel, table=True):
    """The hash of a complete subtree: leaves [index * 2^level, (index + 1) * 2^level)."""

    __tablename__ = "audit_node"

    level: int = Field(primary_key=True)
    index: int = Field(primary_key=True)
    hash: str = Field(max_length=64)


class AuditCheckpointRow(SQLModel, table=True):
    """A signed checkpoint of the ledger (see exchange.audit.checkpoint)."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(primary_key=True)
    root: str = Field(max_length=64)
    note: str
    created_at: datetime = Field(sa_column=_utc_column(index=True))
    # Set when the checkpoint was handed to a witness (exported); the ledger must stay
    # consistent with the last exported one.
    exported_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class AuditVerificationRow(SQLModel, table=True):
    """The outcome of each full verification of the ledger."""

    __tablename__ = "audit_verification"

    row: int | None = Field(default=None, primary_key=True)
    verified_at: datetime = Field(sa_column=_utc_column(index=True))
    ok: bool
    checked: int
    problem: str | None = None


class PolicyRevisionRow(SQLModel, table=True):
    """Every policy bundle the exchange decided with, so any past decision can be replayed."""

    __tablename__ = "policy_revision"

    revision: str = Field(primary_key=True, max_length=80)
    modules: str  # JSON: [[path, source], ...]
    data: str  # JSON
    first_seen: datetime = Field(sa_column=_utc_column())


class NoisyReleaseRow(SQLModel, table=True):
    """A differentially private release (exchange/privacy/noise.py): what a recipient was
    told on a day, and the epsilon it spent. Asked again that day, the recipient is told
    the same, spending nothing, so repeating a query cannot average the noise away; the
    day's spending is the sum of its rows. Written in the transaction of the release's
    audit entry."""

    __tablename__ = "noisy_release"

    recipient: str = Field(primary_key=True, max_length=200)  # the pseudonym domain
    day: str = Field(primary_key=True, max_length=10)
    query: str = Field(primary_key=True, max_length=200)
    epsilon: float
    answer: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
