"""(c) Labels use no event after the end of their performance window.

For a random history and as-of date T, everything after the target's window end is rewritten (payments
moved, dropped or added, bills and conversions added, closings moved, limits and macro changed); the label
as of T must not move. The windows: self-cure 30 days, early warning the first bill due within 35 days plus
at most 3 grace days and the day after, default 6 months (T + 6 calendar months, month ends to month ends).

(d) A closing takes an account off the book from its day on, and changes nothing before it: closed after T,
the account's labels as of T are those it has never closed (decided by the bills there are, even when the
closing falls inside the window); closed by T, it has none, and no other account's label moves.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from test_features_pit import (
    PIT,
    _date,
    _last_statement,
    as_of_dates,
    frames,
    future_rewrites,
    histories,
    validated,
    with_anchor,
)

from features.contract import validate
from features.extraction import STATED, Extraction
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


@st.composite
def histories_closed_near_as_of(draw):
    """A history, an as-of day T and the same history with one account closed a little before or after T
    (never before its last statement), and never closed in the first."""
    world = draw(histories())
    (T,) = draw(as_of_dates(world))
    never = with_anchor(world, [T])
    account = draw(st.sampled_from(never.accounts))
    account["close_date"] = None
    closed = never.copy()
    mine = next(a for a in closed.accounts if a["account_id"] == account["account_id"])
    own = [b for b in closed.bills if b["account_id"] == mine["account_id"]]
    mine["close_date"] = max(T + draw(st.sampled_from([-30, -1, 0, 1, 2, 40, 200])),
                             _last_statement(own, mine["open_date"]))
    return never, closed, T, mine["account_id"], mine["close_date"]


def _labels_at(world, T: int, last: int) -> pd.DataFrame:
    """Every label and completeness flag as of T, the extraction date stated as day `last`."""
    tables = validate(frames(world), extraction=Extraction(_date(last), STATED))
    return build_labels(tables, [_date(T)], CFG).set_index("account_id")


@settings(PIT, max_examples=200)
@given(histories_closed_near_as_of())
def test_a_closing_takes_the_account_off_the_book_from_its_day_and_changes_nothing_before(case):
    never, closed, T, account, close_day = case
    last = max(closed.dates())  # the same extraction date for both: completeness does not move with it
    before, after = _labels_at(never, T, last), _labels_at(closed, T, last)
    if close_day <= T:
        assert account not in after.index
        before = before.drop(index=account, errors="ignore")
    pd.testing.assert_frame_equal(before, after)
