"""Differentially private counts, through OpenDP.

The hub's cockpit sees how many residents in each zone have each need. Those counts are
released with the discrete Laplace mechanism: each resident is counted in exactly one
cell of a fact's table, so adding or removing one resident changes the table by one in
L1 distance per fact, and a release of ``facts`` tables has sensitivity ``facts``. The
epsilon a release spends is what OpenDP's own privacy map states for that sensitivity,
never a figure computed here; a release whose stated epsilon exceeds what was asked for
is refused.

Post-processing (clamping a noisy count at zero) costs no privacy.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")


@dataclass(frozen=True)
class NoisyCounts:
    counts: tuple[int, ...]
    epsilon: float  # as OpenDP's privacy map states it
    mechanism: str = "discrete Laplace (OpenDP)"


def noisy_counts(counts: Sequence[int], epsilon: float, sensitivity: int) -> NoisyCounts:
    """``counts`` with discrete Laplace noise of scale ``sensitivity / epsilon``."""
    if epsilon <= 0 or sensitivity < 1:
        raise ValueError("epsilon must be positive and sensitivity at least one")
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    measurement = space >> dp.m.then_laplace(scale=sensitivity / epsilon)
    stated = float(measurement.map(sensitivity))
    if stated > epsilon * (1 + 1e-9):
        raise ValueError("the mechanism would spend more than the epsilon asked for")
    released = measurement([int(c) for c in counts])
    return NoisyCounts(tuple(max(0, int(v)) for v in released), stated)
