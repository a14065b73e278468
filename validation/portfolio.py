"""The portfolio as a reviewer reads it: vintage curves and month-to-month roll rates between DPD buckets.

Both read a long frame of month-end snapshots, one row per account opened by each month end (account_id,
as_of, dpd, worst_dpd, status, bucket, open_date, product), as `portfolio_frame` builds it from the contract
tables with features.dpd: only what was known at the end of each month end is in it.

Buckets: an account on the book is in the bucket of its DPD (current, 1-29, 30-59, 60-89, 90-179; 180+ is the
loss bucket, "charged off", where the simulator writes accounts off); an account off the book is in
"charged off" or "closed" (closed by its holder, or repaid), and stays there: both are absorbing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.builders import Prepared, to_days
from features.contract import Tables
from features.days import calendar_months
from features.dpd import STATUSES, dpd_at

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BUCKETS = ("current", "1-29", "30-59", "60-89", "90-179", "charged off", "closed")
ROLL_FROM = BUCKETS[:5]  # the buckets an account can still leave: the roll-rate matrix's rows
_DPD_EDGES = np.array([1, 30, 60, 90, 180])  # the first DPD of each bucket after current
COHORTS = {"month": 1, "quarter": 3, "year": 12}  # months in a cohort


def bucket_of(dpd, status) -> pd.Categorical:
    """The bucket (a categorical of BUCKETS) of each DPD and status (names of features.dpd.STATUSES)."""
    return _buckets(np.asarray(dpd), _codes(status, STATUSES[1:], "status") + 1)


def _buckets(dpd: np.ndarray, status: np.ndarray) -> pd.Categorical:
    """Buckets of DPDs and status codes of features.dpd.STATUSES."""
    code = np.searchsorted(_DPD_EDGES, dpd, side="right")  # 0 current ... 5 for 180+: the loss bucket
    code = np.where(status == STATUSES.index("charged_off"), 5, np.where(status == STATUSES.index("closed"), 6,
                                                                         code))
    return pd.Categorical.from_codes(code, BUCKETS)


def _codes(values, names: tuple[str, ...], column: str) -> np.ndarray:
    """Positions of the values in `names` (by their categories: no string compared row by row); a value not
    there is refused by name."""
    values = values.array if isinstance(values, pd.Series) else values
    cat = values if isinstance(values, pd.Categorical) else pd.Categorical(np.asarray(values, dtype=object))
    where = np.append(pd.Index(names).get_indexer(cat.categories.astype(object)), -1)
    codes = where[cat.codes]
    if (codes < 0).any():
        found = sorted({str(v) for v in np.asarray(values, dtype=object)[codes < 0][:1000]})[:3]
        raise ValueError(f"{column} must be one of {', '.join(names)}; found {', '.join(found)}")
    return codes


def month_ends_of(tables: Tables | Prepared, months: int) -> pd.DatetimeIndex:
    """The last `months` calendar month ends on or before the data's extraction date."""
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    if prep.extraction is None:
        raise ValueError("the data states no extraction date: give the month ends yourself")
    last = (prep.extraction + pd.offsets.Day(1)) - pd.offsets.MonthEnd(1)  # a month end is its own
    return pd.date_range(end=last.normalize(), periods=months, freq="ME")


def portfolio_frame(tables: Tables | Prepared, month_ends) -> pd.DataFrame:
    """One row per account opened by each month end, date by date in account order: account_id, as_of, dpd,
    worst_dpd (worst DPD at any day end so far), status, bucket (categorical of BUCKETS), open_date, product.
    Point-in-time: each row reads only events dated on or before its month end (features.dpd)."""
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    frame = dpd_at(prep, month_ends).frame()
    pos = np.searchsorted(prep.account_id, frame["account_id"].to_numpy())
    frame["bucket"] = _buckets(frame["dpd"].to_numpy(), frame["status"].cat.codes.to_numpy())
    frame["open_date"] = (prep.open_day[pos] * 86_400).view("datetime64[s]")
    frame["product"] = pd.Categorical.from_codes(prep.is_installment[pos].astype(np.int8),
                                                 ["revolving", "installment"])
    return frame


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(columns)}; the frame lacks {', '.join(missing)} "
                         "(portfolio_frame builds them)")


def _month(values) -> np.ndarray:
    """Calendar months since 1970-01 of dates (no missing one)."""
    return calendar_months(to_days(pd.to_datetime(np.asarray(values)).to_numpy()))


def vintage_curves(frame: pd.DataFrame, threshold: int = 30, cohort: str = "quarter") -> pd.DataFrame:
    """Per opening cohort and month on book, the share of the cohort's accounts that have ever reached
    `threshold` DPD: one row per (cohort, months_on_book) with accounts, reached and share.

    Months on book at a month end = calendar months from the opening month to it (an account opened on
    15 March is 1 month on book at the end of April). "Ever" reads worst_dpd, the worst DPD at any day end so
    far, when the frame has it, else the worst of the month-end DPDs shown. A cohort's curve holds only the
    months on book at which every account of the cohort has a row: no month is extrapolated or filled with
    part of the cohort, so each point is the same accounts and the curve never falls; and only cohorts seen
    from their first month on book, so a curve starts at month 1 (for older cohorts, give earlier month ends).
    Cohorts are named 2024Q1 (quarter), 2024-01 (month) or 2024 (year).
    """
    _require(frame, ("account_id", "as_of", "dpd", "open_date"), "vintage_curves")
    if cohort not in COHORTS:
        raise ValueError(f"cohort must be one of {', '.join(COHORTS)}; got {cohort!r}")
    ids = frame["account_id"].to_numpy(np.int64)
    opened = _month(frame["open_date"])
    mob = _month(frame["as_of"]) - opened
    reached = _worst(frame, ids) >= threshold
    group = opened // COHORTS[cohort]
    first = int(group.min()) if len(group) else 0
    one = ~pd.Series(ids).duplicated().to_numpy()  # one row of each account: its cohort
    size = np.bincount(group[one] - first)
    keep = mob >= 1
    width = int(mob.max()) + 1 if len(mob) else 1
    key = (group[keep] - first) * width + mob[keep]
    accounts, hits = np.bincount(key, minlength=len(size) * width), np.bincount(key, reached[keep], len(size) * width)
    cell = np.flatnonzero(accounts)
    c, m = cell // width, cell % width
    whole = accounts[cell] == size[c]  # the whole cohort seen at that month on book
    born = np.zeros(len(size), bool)
    born[c[whole & (m == 1)]] = True  # ... and from its first month on book
    cell, c, m = cell[whole & born[c]], c[whole & born[c]], m[whole & born[c]]
    out = pd.DataFrame({"cohort": _cohort_names(c + first, cohort), "months_on_book": m,
                        "accounts": accounts[cell], "reached": hits[cell].astype(np.int64)})
    out["share"] = out["reached"] / out["accounts"]
    out.attrs["threshold"] = threshold
    return out


def _worst(frame: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """worst_dpd, or the worst month-end DPD so far per account (rows taken in as_of order)."""
    if "worst_dpd" in frame:
        return frame["worst_dpd"].to_numpy()
    order = np.lexsort((pd.to_datetime(frame["as_of"]).to_numpy(), ids))
    running = pd.Series(frame["dpd"].to_numpy()[order]).groupby(ids[order], sort=False).cummax().to_numpy()
    out = np.empty_like(running)
    out[order] = running
    return out


def _cohort_names(key: np.ndarray, cohort: str) -> list[str]:
    if cohort == "quarter":
        return [f"{1970 + k // 4}Q{k % 4 + 1}" for k in key]
    if cohort == "year":
        return [str(1970 + k) for k in key]
    return [str(np.datetime64(int(k), "M")) for k in key]


def roll_rates(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Month-to-month roll rates: (counts, shares), rows ROLL_FROM (the buckets on the book), columns BUCKETS.

    counts[i, j] is the number of (account, month end) pairs in bucket i at one month end of the frame and in
    bucket j at the next month end of the frame, summed over all consecutive pairs of month ends; shares
    divide each row by its total (NaN for a bucket nobody was in). Accounts in an absorbing bucket (charged
    off, closed) start no pair. Every account in a row bucket must have a row at the next month end.
    """
    _require(frame, ("account_id", "as_of", "bucket"), "roll_rates")
    bucket = _codes(frame["bucket"], BUCKETS, "bucket")
    when = pd.to_datetime(frame["as_of"]).to_numpy()
    t, dates = pd.factorize(when, sort=True)  # hashed: a few dates over millions of rows
    ids = frame["account_id"].to_numpy(np.int64)
    rank = pd.factorize(ids)[0]  # any numbering of the accounts will do: it only pairs an account's rows
    key = rank.astype(np.int64) * len(dates) + t
    order = np.argsort(key, kind="stable")
    if (np.diff(key[order]) == 0).any():
        raise ValueError("the frame holds an account twice at one month end: one row per account and as_of")
    start = np.flatnonzero((bucket < len(ROLL_FROM)) & (t < len(dates) - 1))
    at = np.minimum(np.searchsorted(key[order], key[start] + 1), len(key) - 1)
    found = key[order][at] == key[start] + 1
    if not found.all():
        i = start[np.flatnonzero(~found)[0]]
        raise ValueError(f"account {ids[i]} is {BUCKETS[bucket[i]]} as of {pd.Timestamp(when[i]):%Y-%m-%d} "
                         f"but has no row as of {pd.Timestamp(dates[t[i] + 1]):%Y-%m-%d}: a roll needs every "
                         "account on the book at the next month end")
    pair = bucket[start] * len(BUCKETS) + bucket[order[at]]
    counts = np.bincount(pair, minlength=len(ROLL_FROM) * len(BUCKETS)).reshape(len(ROLL_FROM), len(BUCKETS))
    index, columns = pd.Index(ROLL_FROM, name="from"), pd.Index(BUCKETS, name="to")
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / counts.sum(axis=1, keepdims=True)
    return pd.DataFrame(counts, index, columns), pd.DataFrame(shares, index, columns)


def roll_rate_table(counts: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """The roll-rate shares as percentage text ("97.3 %", "-" for none), with each row's account-months."""
    text = shares.map(lambda v: "-" if not np.isfinite(v) or v == 0 else f"{100 * v:.1f} %")
    text.insert(0, "account-months", counts.sum(axis=1).map(lambda n: f"{n:,}"))
    return text


def vintage_figure(curves: pd.DataFrame) -> Figure:
    """One line per cohort, x months on book, y share ever `threshold`+ DPD; colour by cohort age (older
    darker), only the first and last cohorts labelled, so the legend stays readable with many cohorts."""
    from matplotlib import colormaps

    from validation.report import new_figure

    _require(curves, ("cohort", "months_on_book", "share"), "vintage_figure")
    fig, ax = new_figure(7.5, 4.5)
    cohorts = sorted(curves["cohort"].unique())
    colours = colormaps["viridis"](np.linspace(0.0, 0.9, max(len(cohorts), 1)))
    for k, (name, part) in enumerate(curves.groupby("cohort", sort=True)):
        label = f"opened {name}" if k in (0, len(cohorts) - 1) else None
        ax.plot(part["months_on_book"], 100 * part["share"], lw=1.3, color=colours[k], label=label)
    threshold = curves.attrs.get("threshold", 30)
    ax.set(xlabel="months on book", ylabel=f"accounts ever {threshold}+ DPD (%)",
           title=f"Vintage curves: {len(cohorts)} cohorts (darker: older)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if cohorts:
        ax.legend(fontsize=8, loc="upper left")
    return fig
