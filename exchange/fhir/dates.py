"""FHIR date, dateTime and instant values as half-open UTC ranges [low, high).

A value without a zone (a date, a month, a year, or a search's time of day) means that
day or time where the community lives: ``2026-01-05`` in Hangzhou begins at 16:00 UTC on
the 4th. Read as UTC, a search for a day would miss its first eight hours."""

import re
from calendar import monthrange
from datetime import UTC, datetime, timedelta, timezone, tzinfo

# Upper bound of an open-ended Period; kept inside what every database stores.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)

_DATE_TIME = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?P<H>[01][0-9]|2[0-3]):(?P<M>[0-5][0-9])(?::(?P<S>[0-5][0-9]|60)"
    r"(?P<f>\.[0-9]{1,9})?)?(?P<tz>Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?)?)?)?\Z"
)


def parse_range(value: str, zone: tzinfo = UTC) -> tuple[datetime, datetime]:
    """The instants a FHIR date/dateTime value stands for, a value without a zone read in
    ``zone`` (the community's); ``ValueError`` if malformed."""
    match = _DATE_TIME.match(value)
    if match is None:
        raise ValueError("not a FHIR date or dateTime")
    g = match.groupdict()
    year = int(g["y"])
    if year < 1 or year > 9998:
        raise ValueError("year out of range")
    if g["m"] is None:
        return _local_span(datetime(year, 1, 1), datetime(year + 1, 1, 1), zone)
    month = int(g["m"])
    if g["d"] is None:
        low = datetime(year, month, 1)
        return _local_span(low, low + timedelta(days=monthrange(year, month)[1]), zone)
    day = int(g["d"])
    if day > monthrange(year, month)[1]:
        raise ValueError("no such day")
    if g["H"] is None:
        low = datetime(year, month, day)
        return _local_span(low, low + timedelta(days=1), zone)
    tz = _tz(g["tz"], zone)
    second = min(int(g["S"] or 0), 59)
    fraction = g["f"] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    local = datetime(year, month, day, int(g["H"]), int(g["M"]), second, micro, tzinfo=tz)
    low = local.astimezone(UTC)
    if g["S"] is None:
        step = timedelta(minutes=1)
    elif not fraction:
        step = timedelta(seconds=1)
    else:
        step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction) - 1, 6))))
    return low, low + step


def _local_span(low: datetime, high: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """Local wall-clock bounds as UTC instants; the open ends stay at the far bounds."""
    def instant(moment: datetime) -> datetime:
        try:
            return moment.replace(tzinfo=zone).astimezone(UTC)
        except OverflowError:  # the first hours of year 1, east of Greenwich
            return FAR_PAST
    return instant(low), instant(high)


def _tz(text: str | None, zone: tzinfo) -> tzinfo:
    if text is None:
        return zone
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def period_range(period: dict[str, object],
                 zone: tzinfo = UTC) -> tuple[datetime, datetime] | None:
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) and not isinstance(end, str):
        return None
    low = parse_range(start, zone)[0] if isinstance(start, str) else FAR_PAST
    high = parse_range(end, zone)[1] if isinstance(end, str) else FAR_FUTURE
    return low, high


def to_instant(moment: datetime) -> str:
    """An RFC 3339 instant in UTC with millisecond precision, as FHIR ``instant`` wants."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.astimezone(UTC).microsecond // 1000:03d}Z"
