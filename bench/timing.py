"""Rates measured the same way for every benchmark."""

import statistics
import time
from collections.abc import Callable
from typing import Any


def per_second(fn: Callable[[], Any], seconds: float = 2.0, repeats: int = 5) -> float:
    """Median calls per second over ``repeats`` timed windows."""
    rates = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / repeats
        while time.perf_counter() < deadline:
            fn()
            n += 1
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)
