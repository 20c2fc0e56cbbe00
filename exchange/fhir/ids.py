"""What FHIR R4 allows as a logical id and a version id, checked before either reaches the
store: a path parameter out of its format is a clear 400, never a query or a 5xx."""

import re

from exchange.errors import InvalidRequest

ID_PATTERN = r"[A-Za-z0-9\-.]{1,64}"  # R4 datatypes: id
ID = re.compile(ID_PATTERN + r"\Z")
VERSION = re.compile(r"[1-9][0-9]{0,8}\Z")  # the store's versions count from 1


def check_id(rid: str) -> None:
    if not ID.match(rid):
        raise InvalidRequest("An id is 1 to 64 letters, digits, '-' or '.'.")


def parse_version(vid: str) -> int:
    if not VERSION.match(vid):
        raise InvalidRequest("A version id is a whole number from 1 to 999999999.")
    return int(vid)
