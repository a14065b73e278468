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

from features.builders import Prepared
from features.contract import Tables
from features.dpd import dpd_at

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BUCKETS = ("current", "1-29", "30-59", "60-89", "90-179", "charged off", "closed")
ROLL_FROM = BUCKETS[:5]  # the buckets an account can still leave: the roll-rate matrix's rows
_DPD_EDGES = np.array([1, 30, 60, 90, 180])  # the first DPD of each bucket after current
COHORTS = {"quarter": "Q", "month": "M", "year": "Y"}


def bucket_of(dpd, status) -> pd.Categorical:
    """The bucket (a categorical of BUCKETS) of each DPD and status (features.dpd.STATUSES names)."""
    dpd, status = np.asarray(dpd), np.asarray(status, dtype=object)
    unknown = set(np.unique(status)) - {"on_book", "closed", "charged_off"}
    if unknown:
        raise ValueError(f"status must be on_book, closed or charged_off; found {sorted(map(str, unknown))[:3]}")
    code = np.searchsorted(_DPD_EDGES, dpd, side="right")  # 0 current ... 5 for 180+: the loss bucket
    code = np.where(status == "charged_off", 5, np.where(status == "closed", 6, code))
    return pd.Categorical.from_codes(code, BUCKETS)


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
    frame["bucket"] = bucket_of(frame["dpd"].to_numpy(), frame["status"].to_numpy(object))
    frame["open_date"] = (prep.open_day[pos] * 86_400).view("datetime64[s]")
    frame["product"] = pd.Categorical.from_codes(prep.is_installment[pos].astype(np.int8),
                                                 ["revolving", "installment"])
    return frame


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(columns)}; the frame lacks {', '.join(missing)} "
                         "(portfolio_frame builds them)")


def vintage_curves(frame: pd.DataFrame, threshold: int = 30, cohort: str = "quarter") -> pd.DataFrame:
    """Per opening cohort and month on book, the share of the cohort's accounts that have ever reached
    `threshold` DPD: one row per (cohort, months_on_book) with accounts, reached and share.

    Months on book at a month end = calendar months from the opening month to it (an account opened on
    15 March is 1 month on book at the end of April). "Ever" reads worst_dpd, the worst DPD at any day end so
    far, when the frame has it, else the worst of the month-end DPDs shown. A cohort's curve holds only the
    months on book at which every account of the cohort has a row: no month is extrapolated or filled with
    part of the cohort, so each point is the same accounts and the curve never falls; and only cohorts seen
    from their first month on book, so a curve starts at month 1 (for older cohorts, give earlier month ends).
    """
    _require(frame, ("account_id", "as_of", "dpd", "open_date"), "vintage_curves")
    if cohort not in COHORTS:
        raise ValueError(f"cohort must be one of {', '.join(COHORTS)}; got {cohort!r}")
    data = frame.sort_values(["account_id", "as_of"], kind="stable")
    worst = data["worst_dpd"] if "worst_dpd" in data else data.groupby("account_id", sort=False)["dpd"].cummax()
    opened = pd.to_datetime(data["open_date"])
    mob = _months(pd.to_datetime(data["as_of"])) - _months(opened)
    group = opened.dt.to_period(COHORTS[cohort])
    size = pd.DataFrame({"cohort": group, "account_id": data["account_id"]}).drop_duplicates()
    size = size.groupby("cohort").size()
    rows = pd.DataFrame({"cohort": group, "months_on_book": mob, "reached": worst >= threshold})[mob >= 1]
    out = rows.groupby(["cohort", "months_on_book"]).agg(accounts=("reached", "size"),
                                                         reached=("reached", "sum")).reset_index()
    out = out[out["accounts"].to_numpy() == size.loc[out["cohort"]].to_numpy()]  # the whole cohort seen
    out = out[out.groupby("cohort", observed=True)["months_on_book"].transform("min") == 1]  # seen from birth
    out["cohort"] = out["cohort"].astype(str)
    out["reached"] = out["reached"].astype(np.int64)
    out["share"] = out["reached"] / out["accounts"]
    out.attrs["threshold"] = threshold
    return out.sort_values(["cohort", "months_on_book"], ignore_index=True)


def _months(stamps: pd.Series) -> np.ndarray:
    return stamps.dt.year.to_numpy(np.int64) * 12 + stamps.dt.month.to_numpy(np.int64)


def roll_rates(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Month-to-month roll rates: (counts, shares), rows ROLL_FROM (the buckets on the book), columns BUCKETS.

    counts[i, j] is the number of (account, month end) pairs in bucket i at one month end of the frame and in
    bucket j at the next month end of the frame, summed over all consecutive pairs of month ends; shares
    divide each row by its total (NaN for a bucket nobody was in). Accounts in an absorbing bucket (charged
    off, closed) start no pair. Every account in a row bucket must have a row at the next month end.
    """
    _require(frame, ("account_id", "as_of", "bucket"), "roll_rates")
    bucket = pd.Categorical(frame["bucket"], categories=BUCKETS)
    if bucket.isna().any():
        bad = frame["bucket"][pd.isna(bucket)].astype(str).unique()[:3]
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}; found {', '.join(bad)}")
    when = pd.to_datetime(frame["as_of"]).to_numpy()
    dates = np.unique(when)
    t = np.searchsorted(dates, when)
    ids = frame["account_id"].to_numpy(np.int64)
    keys = pd.MultiIndex.from_arrays([ids, t])
    if keys.has_duplicates:
        raise ValueError("the frame holds an account twice at one month end: one row per account and as_of")
    start = (bucket.codes < len(ROLL_FROM)) & (t < len(dates) - 1)
    nxt = keys.get_indexer(pd.MultiIndex.from_arrays([ids[start], t[start] + 1]))
    if (nxt < 0).any():
        i = np.flatnonzero(start)[np.flatnonzero(nxt < 0)[0]]
        raise ValueError(f"account {ids[i]} is {BUCKETS[bucket.codes[i]]} as of {pd.Timestamp(when[i]):%Y-%m-%d} "
                         f"but has no row as of {pd.Timestamp(dates[t[i] + 1]):%Y-%m-%d}: a roll needs every "
                         "account on the book at the next month end")
    pair = bucket.codes[start].astype(np.int64) * len(BUCKETS) + bucket.codes[nxt]
    counts = np.bincount(pair, minlength=len(ROLL_FROM) * len(BUCKETS)).reshape(len(ROLL_FROM), len(BUCKETS))
    index = pd.Index(ROLL_FROM, name="from")
    columns = pd.Index(BUCKETS, name="to")
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
