"""Search by a number or a quantity (R4 search.html#number, #quantity), judged on the
decrypted resource. The store keeps no measured value in an index: a value in clear at
rest is a fingerprint. So a search by value narrows by its other criteria in SQL first,
then compares values here, on at most ``VALUE_LIMIT`` candidates."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from exchange.errors import InvalidSearch

VALUE_LIMIT = 5000  # candidates a search by value may compare; more is a 400 (narrow it)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True)
class NumberValue:
    prefix: str
    number: Decimal
    low: Decimal  # the range the number's precision implies: 5.4 is [5.35, 5.45)
    high: Decimal
    system: str | None = None  # a quantity's unit, if the search names one
    code: str | None = None

    def admits(self, value: Any) -> bool:
        """Whether a stored number, or Quantity, matches."""
        if isinstance(value, dict):
            if self.code is not None and self.code not in (value.get("code"),
                                                          value.get("unit")):
                return False
            if self.system and value.get("system") != self.system:
                return False
            value = value.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return False
        x = Decimal(str(value))
        return {
            "eq": self.low <= x < self.high, "ne": not self.low <= x < self.high,
            "gt": x > self.number, "sa": x > self.number,
            "lt": x < self.number, "eb": x < self.number,
            "ge": x >= self.number, "le": x <= self.number,
            "ap": abs(x - self.number) <= abs(self.number) / 10,
        }[self.prefix]


def parse_number(raw: str, quantity: bool) -> NumberValue:
    prefix = raw[:2] if raw[:2] in PREFIXES else "eq"
    rest = raw[2:] if prefix != "eq" or raw.startswith("eq") else raw
    system: str | None = None
    code: str | None = None
    if quantity and "|" in rest:
        parts = rest.split("|")
        if len(parts) != 3:
            raise InvalidSearch("A quantity is number|system|code.")
        rest, system, code = parts[0], parts[1] or None, parts[2] or None
    try:
        number = Decimal(rest)
    except InvalidOperation:
        raise InvalidSearch("A number or quantity search has a malformed number.") from None
    if not number.is_finite():
        raise InvalidSearch("A number or quantity search has a malformed number.")
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1 if isinstance(exponent, int) else -1)
    return NumberValue(prefix, number, number - half, number + half, system, code)
