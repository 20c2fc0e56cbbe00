"""Free-text scrubbing: resident ID numbers, mobile numbers and the resident's own name.

Patterns catch any ID number or mobile number; the resident's own names, identifiers and
phone numbers (from their Patient record) are removed as literals. A one-character name
part is not searched on its own: a surname such as 王 is also a common word, and the full
name it belongs to is already removed.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# 18-character resident identity number: region, birth date, sequence, check character.
# Bounded by non-digits only: "ID330106..." is an ID number too (over-redaction is safe).
ID_NUMBER = re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                       r"(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d)")
# Mainland mobile numbers, with or without +86 and separators.
MOBILE = re.compile(r"(?:\+86[\s-]?|(?<!\d)86[\s-]?|(?<!\d))1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
# Any longer run of digits, spaces or dashes allowed between them (numbers written
# together), goes too, with the + of a country code before it.
LONG_DIGITS = re.compile(r"\+?\d(?:[\s-]?\d){14,}")
REPLACEMENT = "***"
DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Subject:
    """What identifies one resident in free text."""

    resident: str | None
    literals: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    @staticmethod
    def of(resident: str | None, patient: dict[str, Any] | None) -> "Subject":
        literals = sorted(set(_literals(patient or {})), key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(x) for x in literals)) if literals else None
        return Subject(resident, tuple(literals), pattern)


def scrub(text: str, subject: Subject) -> str:
    if DIGIT.search(text):  # the numbers' patterns only where there are digits
        text = LONG_DIGITS.sub(REPLACEMENT, ID_NUMBER.sub(REPLACEMENT, text))
        text = MOBILE.sub(REPLACEMENT, text)
    if subject.pattern is not None:
        text = subject.pattern.sub(REPLACEMENT, text)
    return text


def _literals(patient: dict[str, Any]) -> Iterable[str]:
    for name in patient.get("name") or []:
        if not isinstance(name, dict):
            continue
        family: str = name["family"] if isinstance(name.get("family"), str) else ""
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        if isinstance(name.get("text"), str):
            yield name["text"]
        if family and given:
            yield family + "".join(given)          # 王秀英
            if family.isascii():
                yield " ".join([*given, family])   # Xiuying Wang
                yield " ".join([family, *given])   # Wang Xiuying
        for part in [family, *given]:
            if len(part) >= 2:
                yield part
    for element in ("identifier", "telecom"):
        for item in patient.get(element) or []:
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, str) and len(value) >= 4:
                yield value
                digits = re.sub(r"\D", "", value)
                if len(digits) >= 7 and digits != value:
                    yield digits
