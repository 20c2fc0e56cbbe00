"""The de-identification methods a profile's rules name.

Every method gets the element's value, its name, its path, the rule's params and the
``ShapeContext`` of the disclosure (the recipient's pseudonym domain, the resident, the
generalization level the k-anonymity guard chose). A method returns the new value,
``REMOVE``, or ``Moved`` (an extension that replaces the element, e.g. an age band).

- ``dateShift``: one offset per resident per pseudonym domain, within ±``date_shift_days``.
  Precision is kept: a year stays a year, a year-month is shifted as its 15th day. With
  ``params.time = "drop"`` a dateTime leaves as its (local) date: a time of day is the same
  on both sides of a shift, so it would match a clinic's identified record. With
  ``params.jitter_days`` each resource's dates move by a further offset of their own,
  within ±that many days: the intervals between visits no longer fingerprint a resident
  (dates within one resource, a period's start and end, keep their distance).
- ``cryptoHash``: HMAC-SHA256 under the domain key. A resource ``id`` and a reference
  ``Type/id`` hash the same input, so a recipient's bundle still links within itself.
- ``encrypt``: AES-SIV under a domain key only the exchange holds (deterministic, so the
  same value gives the same token); the exchange can reverse it, a recipient cannot.
- ``substitute``: ``params.value`` replaces the value.
- ``generalize``: ``to`` = ``year`` (a date to its year), ``ageBand`` (a birth date to an
  age-band extension, widths from the k-anonymity level, top-coded at ``top``; a width of
  0 releases no age), ``zone``
  (an address to district or city, postal code cut to ``postal_digits``), ``gender``
  (kept, or ``unknown`` at the coarsest levels).
- ``perturb``: numeric noise, ``absolute`` or ``relative`` span, keyed by the resource and
  path so that repeating a query does not average it away; ``round`` digits. With
  ``resident_relative`` a resident's values of one code are also scaled by a factor of
  their own (within ±that share, per recipient): a series' mean is then off by that
  factor, which no number of readings averages away. ``by_code`` sets the relative span
  per code (``system|code`` of the resource): a reading's noise must be as wide as the
  code's own variation from one reading to the next, or the sequence of a resident's
  readings is a fingerprint that a holder of the identified series can correlate.
- ``scrub``: free text without ID numbers, mobile numbers or the resident's own name.
"""

import base64
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from exchange.privacy.free_text import Subject, scrub

REMOVE: Any = object()
AGE_BAND = "https://fhir.community-exchange.example/StructureDefinition/age-band"
DATE = re.compile(r"(\d{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01])(T[0-9:.]+"
                  r"(?:Z|[+-]\d{2}:\d{2})?)?)?)?")
REFERENCE = re.compile(r"(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/.*)?")
HASH_SKIPS = frozenset({"system", "url"})
SIV_PREFIX = "siv."  # marks a re-identification token (``encrypt``)


@dataclass(frozen=True)
class Moved:
    extension: dict[str, Any]


@dataclass
class ShapeContext:
    """One disclosure's keys and facts, shared by the resources it shapes."""

    hash_key: bytes
    siv_key: bytes
    subject: Callable[[], Subject]
    today: date
    date_shift_days: int = 0
    level: dict[str, Any] = field(default_factory=dict)
    resident: str | None = None
    resource_type: str = ""
    resource_id: str = ""
    resource_code: str = ""  # the resource's first code (per-resident noise is per code)
    keyed: bool = False  # set while shaping: a keyed method touched the current object
    resource_bound: bool = False  # ... and its result depends on the resource itself
    # What repeats for this resident and domain: pseudonyms, shifted dates, scrubbed texts,
    # whole shaped objects (keyed by the profile).
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _offset: int | None = None
    _siv: AESSIV | None = None

    def offset(self) -> int:
        """This resident's date shift in this domain, within ±date_shift_days."""
        if self._offset is None:
            n = self.date_shift_days
            digest = hmac.digest(self.hash_key,
                                 b"date-shift\x00" + str(self.resident).encode(), "sha256")
            self._offset = int.from_bytes(digest[:8], "big") % (2 * n + 1) - n if n else 0
        return self._offset

    def mac(self, message: str) -> str:
        return pseudonym(self.hash_key, message)

    def remembered(self, kind: str, value: str, make: Callable[[], Any]) -> Any:
        """Results that repeat within one disclosure (a resident's reference, a date)."""
        key = (kind, value)
        found = self.memo.get(key)
        if found is None:
            found = make()
            if len(self.memo) < 10_000:
                self.memo[key] = found
        return found

    def siv(self) -> AESSIV:
        if self._siv is None:
            self._siv = AESSIV(self.siv_key)
        return self._siv


def is_date(value: str) -> bool:
    # The cheap test first: most strings are codes and URLs.
    return len(value) >= 7 and value[4] == "-" and value[:4].isdigit() \
        and DATE.fullmatch(value) is not None


def pseudonym(key: bytes, reference: str) -> str:
    """A stable, recipient-specific stand-in for ``Type/id`` (HMAC-SHA256 under the domain
    key, 160 bits in hex); unlinkable across domains. Also the keyed hash of any value."""
    return hmac.digest(key, reference.encode(), "sha256").hex()[:40]


def _date_shift(value: Any, key: str, path: str, params: dict[str, Any],
                ctx: ShapeContext) -> Any:
    if not isinstance(value, str):
        return REMOVE
    drop_time = params.get("time") == "drop"
    jitter = int(params.get("jitter_days", 0))
    if jitter:
        ctx.resource_bound = True  # each resource its own jitter: never remembered across
        days = ctx.offset() + _jitter(ctx, jitter)
        return _shifted(value, days, drop_time)
    return ctx.remembered("date" + ("/day" if drop_time else ""), value,
                          lambda: _shifted(value, ctx.offset(), drop_time))


def _jitter(ctx: ShapeContext, span: int) -> int:
    digest = hmac.digest(ctx.hash_key, f"date-jitter\x00{ctx.resident}\x00"
                         f"{ctx.resource_type}/{ctx.resource_id}".encode(), "sha256")
    return int.from_bytes(digest[:8], "big") % (2 * span + 1) - span


def _shifted(value: str, offset: int, drop_time: bool = False) -> Any:
    m = DATE.fullmatch(value)
    if m is None:
        return REMOVE  # not a date after all: never release what could not be shifted
    year, month, day, time = m.groups()
    days = timedelta(days=offset)
    if month is None:
        return value
    if day is None:
        shifted = date(int(year), int(month), 15) + days
        return shifted.isoformat()[:7]
    try:
        shifted = date(int(year), int(month), int(day)) + days
    except ValueError:
        return REMOVE
    return shifted.isoformat() + ("" if drop_time else (time or ""))


def _per_leaf(method: "Method", value: Any, key: str, path: str, params: dict[str, Any],
              ctx: ShapeContext) -> Any:
    """A method on an object or list applies to each value inside, but systems and urls."""
    if isinstance(value, dict):
        return {k: (v if k in HASH_SKIPS else method(v, k, f"{path}.{k}", params, ctx))
                for k, v in value.items()}
    return [method(v, key, path, params, ctx) for v in value]


def _crypto_hash(value: Any, key: str, path: str, params: dict[str, Any],
                 ctx: ShapeContext) -> Any:
    if isinstance(value, dict | list):
        return _per_leaf(_crypto_hash, value, key, path, params, ctx)
    if key == "id" and path == f"{ctx.resource_type}.id":
        return ctx.mac(f"{ctx.resource_type}/{value}")
    if key == "reference" and isinstance(value, str):
        m = REFERENCE.fullmatch(value)
        if m is None:
            return REMOVE  # contained (#) or foreign references are not carried
        rtype, rid = m.group(1), m.group(2)
        if rtype in params.get("keep_types", ()):
            return f"{rtype}/{rid}"
        return ctx.remembered("reference", value,
                              lambda: f"{rtype}/{ctx.mac(f'{rtype}/{rid}')}")
    return ctx.mac(str(value))


def _encrypt(value: Any, key: str, path: str, params: dict[str, Any],
             ctx: ShapeContext) -> Any:
    if isinstance(value, dict | list):
        return _per_leaf(_encrypt, value, key, path, params, ctx)
    token = ctx.siv().encrypt(str(value).encode(), [path.encode()])
    return SIV_PREFIX + base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def _substitute(value: Any, key: str, path: str, params: dict[str, Any],
                ctx: ShapeContext) -> Any:
    return params.get("value", REMOVE)


def _generalize(value: Any, key: str, path: str, params: dict[str, Any],
                ctx: ShapeContext) -> Any:
    to = params.get("to")
    if to == "year":
        return value[:4] if isinstance(value, str) and DATE.fullmatch(value) else REMOVE
    if to == "ageBand":
        width = int(ctx.level.get("age_band", params.get("width", 5)))
        if width <= 0:
            return REMOVE  # a rung that releases no age at all
        return age_band(value, ctx.today, width, int(params.get("top", 90)))
    if to == "zone":
        return zone(value, str(ctx.level.get("zone", "district")),
                    int(params.get("postal_digits", 0)))
    if to == "gender":
        return value if ctx.level.get("gender", True) else "unknown"
    return REMOVE


def age_band(birth: Any, today: date, width: int, top: int) -> Any:
    if not isinstance(birth, str) or DATE.fullmatch(birth) is None:
        return REMOVE
    age = today.year - int(birth[:4])  # the year alone: no finer than a band needs
    if age >= top:
        low, high = top, None
    else:
        low = age // width * width
        high = min(low + width, top) - 1  # the top band begins at ``top``
    band: dict[str, Any] = {"low": {"value": low, "unit": "a",
                                    "system": "http://unitsofmeasure.org", "code": "a"}}
    if high is not None:
        band["high"] = {"value": high, "unit": "a", "system": "http://unitsofmeasure.org",
                        "code": "a"}
    return Moved({"url": AGE_BAND, "valueRange": band})


def zone(address: Any, level: str, postal_digits: int) -> Any:
    if not isinstance(address, dict):
        return REMOVE
    keep = ("city", "state", "country") if level == "city" else \
        ("district", "city", "state", "country")
    out = {k: address[k] for k in keep if isinstance(address.get(k), str)}
    postal = address.get("postalCode")
    if level != "city" and postal_digits and isinstance(postal, str) \
            and len(postal) > postal_digits:
        out["postalCode"] = postal[:postal_digits]
    return out or REMOVE


def _perturb(value: Any, key: str, path: str, params: dict[str, Any],
             ctx: ShapeContext) -> Any:
    ctx.resource_bound = True  # keyed by the resource: never remembered across resources
    if isinstance(value, bool) or not isinstance(value, int | float):
        return REMOVE
    share = float(params.get("resident_relative", 0))
    if share:
        value = value * (1 + share * _signed_unit(
            ctx, f"perturb-resident\x00{ctx.resident}\x00{ctx.resource_code}\x00{path}"))
    relative = float(params.get("by_code", {}).get(ctx.resource_code,
                                                    params.get("relative", 0)))
    span = float(params.get("absolute", 0)) or abs(value) * relative
    noisy = value + span * _signed_unit(
        ctx, f"perturb\x00{ctx.resource_type}/{ctx.resource_id}\x00{path}")
    digits = int(params.get("round", 2))
    return round(noisy, digits) if digits > 0 else round(noisy)


def _signed_unit(ctx: ShapeContext, message: str) -> float:
    """A number in [-1, 1) drawn from the recipient's key: the same for the same message."""
    digest = hmac.digest(ctx.hash_key, message.encode(), "sha256")
    return 2 * int.from_bytes(digest[:8], "big") / 2**64 - 1


def _scrub(value: Any, key: str, path: str, params: dict[str, Any],
           ctx: ShapeContext) -> Any:
    if isinstance(value, dict | list):
        return _per_leaf(_scrub, value, key, path, params, ctx)
    if not isinstance(value, str):
        return value
    return ctx.remembered("scrub", value, lambda: scrub(value, ctx.subject()))


Method = Callable[[Any, str, str, dict[str, Any], ShapeContext], Any]
METHODS: dict[str, Method] = {
    "dateShift": _date_shift,
    "cryptoHash": _crypto_hash,
    "encrypt": _encrypt,
    "substitute": _substitute,
    "generalize": _generalize,
    "perturb": _perturb,
    "scrub": _scrub,
}


def reveal(siv_key: bytes, path: str, token: str) -> str:
    """The exchange's side of ``encrypt``: the value behind a token (raises on a bad one)."""
    if not token.startswith(SIV_PREFIX):
        raise ValueError("not a re-identification token")
    body = token[len(SIV_PREFIX):]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return AESSIV(siv_key).decrypt(raw, [path.encode()]).decode()

