"""The pack's sections, in reading order: one list that the review job and the training run both build from."""
from __future__ import annotations

from collections.abc import Callable

from models.bundle import Bundle
from review import benchmark, calibration, data, decisions, explanation, portfolio, ranking, stability
from review.evidence import Evidence
from review.pack import Section
from review.thresholds import Thresholds


def sections(ev: Evidence, bundle: Bundle, thresholds: Thresholds, *, n_boot: int, seed: int,
             progress: Callable[[str], None] = lambda _: None) -> list[Section]:
    """Every section of the pack, each announced to `progress` as it starts (the bench times them so)."""
    steps = [("data and definitions", lambda: data.section(ev)),
             ("discrimination", lambda: ranking.section(ev, thresholds, n_boot=n_boot, seed=seed)),
             ("calibration", lambda: calibration.section(ev, thresholds)),
             ("stability", lambda: stability.section(ev, thresholds)),
             ("portfolio", lambda: portfolio.section(ev)),
             ("explanation", lambda: explanation.section(ev, bundle, thresholds)),
             ("benchmark", lambda: benchmark.section(ev, thresholds)),
             ("decisions", lambda: decisions.section(ev))]
    out = []
    for name, make in steps:
        progress(f"section: {name}")
        out.append(make())
    return out
