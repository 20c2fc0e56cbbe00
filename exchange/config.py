"""Settings read from the environment (prefix ``EXCHANGE_``)."""

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_")

    # The one default every command shares; ``make demo`` seeds it.
    data_dir: Path = Path("demo-data")
    # The keys (data-key wrapping keys, the key store of every wrapped data key, the
    # ledger's and the tokens' signing keys), kept apart from the data so that a copy of
    # one is no copy of the other: a database backup holds no key material. The key store
    # keeps no retired wrapped key (an erased or re-wrapped one is overwritten when its
    # change commits; exchange.privacy.key_store). Empty means "<data_dir>-keys" beside
    # the data directory.
    key_dir: Path | None = None
    # Where signed checkpoints are published (`exchange audit publish`, and `serve` each
    # minute) and read back by verify: a file path or an http(s) URL. Empty means a local
    # witness, "<data_dir>-witness/checkpoint"; "none" means no witness.
    witness: str = ""
    # Empty means "exchange.db inside data_dir"; any SQLAlchemy URL is accepted.
    database_url: str = ""
    # Where ``exchange serve`` listens; the public base URL follows it unless it is set.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Empty means "http://127.0.0.1:<port>"; behind a proxy, the address clients use.
    base_url: str = ""
    # Other FHIR base URLs that name this exchange (an old host name, an internal address):
    # an absolute reference under one of them, or under fhir_base, is to a local record;
    # one under any other base is another server's and refused. Comma-separated.
    server_aliases: Annotated[list[str], NoDecode] = Field(default_factory=list)
    environment: Literal["development", "production"] = "development"
    decision_point: Literal["embedded", "opa"] = "embedded"
    opa_url: str = "http://127.0.0.1:8181"
    # How long a decision may take, on either decision point; then it is a 503.
    policy_timeout_seconds: float = 2.0
    policy_dir: Path = Path(__file__).resolve().parent.parent / "policies"
    # The log's name in its signed checkpoints; it must not change for an existing ledger.
    audit_origin: str = "community-health-exchange/audit"
    access_token_seconds: int = 300
    max_assertion_seconds: int = 300
    # A "not found" answers no sooner than this after the road began, so that a record the
    # caller may not see cannot be told from a missing one by time (bench: hidden-missing).
    not_found_floor_seconds: float = Field(default=0.008, ge=0, le=1)
    # A body over this is a 413 before it is read whole (a 100 MB Observation was stored).
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    default_page_size: int = 50
    max_page_size: int = 500
    # Where the community lives: a date or time without a zone (a birthDate, a search for
    # a day) is read in this IANA zone. Set it before the first record: stored dates are
    # indexed in the zone of their day.
    time_zone: str = "Asia/Shanghai"
    # The k of the re-identification guard for pseudonymized outputs; empty: the profile's.
    k_anonymity: int | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("server_aliases", mode="before")
    @classmethod
    def _split_aliases(cls, value: object) -> object:
        if isinstance(value, str):  # the environment's form: comma-separated
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("server_aliases")
    @classmethod
    def _http_aliases(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not alias.startswith(("http://", "https://")):
                raise ValueError("each alias must be an http:// or https:// FHIR base URL")
        return [alias.rstrip("/") for alias in value]

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (say Asia/Shanghai)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @model_validator(mode="after")
    def _derive_base_url(self) -> "Settings":
        if not self.base_url:
            self.base_url = f"http://127.0.0.1:{self.port}"
            self.__pydantic_fields_set__.discard("base_url")  # derived, not given
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        # A production exchange must be reachable over TLS: tokens are bearer secrets.
        if self.environment == "production" and not self.base_url.startswith("https://"):
            raise ValueError("EXCHANGE_BASE_URL must be https:// in production")
        return self

    @property
    def address_given(self) -> bool:
        """Whether the base URL or the port was set (by the environment or a flag)."""
        return bool({"base_url", "port"} & self.model_fields_set)

    @property
    def keys_dir(self) -> Path:
        return self.key_dir or self.data_dir.with_name(self.data_dir.name + "-keys")

    @property
    def witness_target(self) -> str | None:
        if self.witness == "none":
            return None
        return self.witness or str(self.data_dir.with_name(self.data_dir.name + "-witness")
                                   / "checkpoint")

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"

    @property
    def token_url(self) -> str:
        return self.base_url.rstrip("/") + "/auth/token"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'exchange.db'}"
