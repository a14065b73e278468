"""(c) Labels use no event after the end of their performance window.

For a random history and as-of date T, everything after the target's window end is rewritten (payments
moved, dropped or added, bills and conversions added, limits and macro changed); the label as of T must
not move. The windows: self-cure 30 days, early warning the first bill due within 35 days plus at most 3
grace days and the day after, default 6 months (T + 6 calendar months, month ends to month ends).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from test_features_pit import PIT, _date, as_of_dates, future_rewrites, histories, validated, with_anchor

from features.labels import LabelConfig, build_labels, window_end

CFG = LabelConfig()
END = {
    "self_cure": lambda T: T + CFG.self_cure_days,
    "early_warning": lambda T: T + CFG.early_warning_days + 3 + 1,
    "early_warning_beyond_grace": lambda T: T + CFG.early_warning_days + 3 + 1,
    "default": lambda T: int(window_end(np.array([_day_number(T)]), CFG.default_months)[0] - _day_number(0)),
}


def _day_number(d: int) -> int:
    return int(np.datetime64(_date(d).date(), "D").astype(np.int64))


def _label(world, T: int, target: str) -> pd.Series:
    labels = build_labels(validated(world), [_date(T)], CFG)
    return labels.set_index("account_id")[target]


@st.composite
def histories_with_late_future(draw):
    world = draw(histories())
    (T,) = draw(as_of_dates(world))
    target = draw(st.sampled_from(sorted(END)))
    world = with_anchor(world, [T])
    return world, T, target, draw(future_rewrites(world, END[target](T)))


@PIT
@given(histories_with_late_future())
def test_events_after_the_window_never_change_labels(case):
    world, T, target, rewritten = case
    before, after = _label(world, T, target), _label(rewritten, T, target)
    both = before.index.intersection(after.index)
    # accounts opened after the window cannot be in a label as of T; those present must agree exactly
    assert set(before.index) <= set(after.index) | set(before.index[before.isna()])
    pd.testing.assert_series_equal(before.loc[both], after.loc[both], check_names=False)
