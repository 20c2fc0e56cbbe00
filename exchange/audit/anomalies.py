"""What an officer should look at: emergency access, volume far above usual, night-time
access, bursts of denials."""

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

CHINA = timezone(timedelta(hours=8))


def find_anomalies(activity: list[tuple[int, datetime, str | None, str | None,
                                        str | None]]) -> list[dict[str, Any]]:
    """Flags for officers: emergency access, volume far above usual, night-time access,
    bursts of denials. Inputs are (seq, time, organization, purpose, outcome)."""
    flags: list[dict[str, Any]] = []
    emergency = [seq for seq, _t, _o, purpose, outcome in activity
                 if purpose == "ETREAT" and outcome == "success"]
    if emergency:
        flags.append({"kind": "break_glass", "count": len(emergency), "entries": emergency[:100]})
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    night: Counter[str] = Counter()
    denials: dict[str, list[datetime]] = defaultdict(list)
    for _seq, moment, org, _purpose, outcome in activity:
        if org is None:
            continue
        local = moment.astimezone(CHINA)
        if outcome == "success":
            per_day[org][local.date().isoformat()] += 1
            if local.hour >= 22 or local.hour < 6:
                night[org] += 1
        elif outcome in ("denied", "refused"):
            denials[org].append(moment)
    for org, days in per_day.items():
        for day, n in days.items():
            others = [m for d, m in days.items() if d != day] or [0]
            usual = statistics.median(others)
            if n >= 20 and n > 3 * usual:
                flags.append({"kind": "volume", "organization": org, "day": day,
                              "count": n, "usual": usual})
    for org, n in night.items():
        flags.append({"kind": "unusual_hours", "organization": org, "count": n,
                      "hours": "22:00-06:00 China Standard Time"})
    window = timedelta(minutes=5)
    for org, times in denials.items():
        times.sort()
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] > window:
                start += 1
            if end - start + 1 >= 10:
                flags.append({"kind": "denial_burst", "organization": org,
                              "from": times[start].astimezone(UTC).isoformat(),
                              "count": end - start + 1})
                break
    return flags
