"""The published macro table: a household stress index shared by every customer in a month.

Stress = a level set by the scenario + a known seasonal pattern (Spring Festival in February, the
November shopping festivals). `baseline` keeps the level at 0; `shock` lifts it by `shock_level` from
the shock month on, a downturn nobody announced in advance. A lender at T knows the index up to T and
forecasts it by persistence: today's level plus the known seasonality. In baseline that forecast is
exact; in a shock it misses the onset, as a real lender would.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from simulation.params import WorldParams

SCENARIOS = ("baseline", "shock")


def first_world_month(params: WorldParams, history_months: int) -> str:
    """The world's first month: `history_months` before the first as-of month (`WorldParams.start_month`)."""
    return (pd.Timestamp(params.start_month + "-01") - pd.DateOffset(months=history_months)).strftime("%Y-%m")


def month_starts(first: str, months: int) -> pd.DatetimeIndex:
    return pd.date_range(first + "-01", periods=months, freq="MS")


def stress_level(scenario: str, months: int, shock_month: int) -> np.ndarray:
    """Scenario level of the stress index for months 0..months-1 (without seasonality)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    level = np.zeros(months)
    if scenario == "shock":
        level[shock_month:] = 1.0
    return level


def seasonal(params: WorldParams, month_index: np.ndarray, first: str) -> np.ndarray:
    """The seasonal stress of world months `month_index`, the world starting in month `first` (YYYY-MM)."""
    offset = pd.Timestamp(first + "-01").month - 1
    return np.asarray(params.seasonal_stress)[(offset + np.asarray(month_index)) % 12]


def stress_path(params: WorldParams, scenario: str, months: int, shock_month: int, first: str) -> np.ndarray:
    """The actual stress index, world months 0..months-1."""
    level = stress_level(scenario, months, shock_month) * params.shock_level
    return level + seasonal(params, np.arange(months), first)


def macro_table(params: WorldParams, scenario: str, months: int, shock_month: int, first: str) -> pd.DataFrame:
    """One row per world month, published on the month's last day (known at T from then on)."""
    starts = month_starts(first, months)
    stress = stress_path(params, scenario, months, shock_month, first)
    return pd.DataFrame({
        "month": starts.astype("datetime64[s]"),
        "published_date": (starts + pd.offsets.MonthEnd(0)).astype("datetime64[s]"),
        "stress_index": stress,
        "unemployment_rate": np.round(0.052 + 0.012 * stress, 4),
    })
