"""Point-in-time repayment features.

Everything here answers one question: what did we know about this account at the end of day T? A payment
dated after T has not happened yet; a bill due after T has not fallen due; a limit effective after T is not
in force. One call builds the whole catalog for every account and many as-of dates, or for the (account,
as-of date) pairs asked for: the tables are turned into day-number arrays once, each bill's settlement day
is found once, and a compiled kernel walks every account's history once, over its as-of dates in order
(features/kernels.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import numpy as np
import pandas as pd

from features import kernels
from features.as_of import check_as_of, day_text
from features.catalog import (
    ACCOUNT_STATE,
    GROWTH_CAP,
    LONG_RECORD,
    RECORD_COUNTS,
    SIGNAL_INDEX,
    Catalog,
    Days,
    Feature,
    default_catalog,
)
from features.contract import Tables
from features.days import ticks_per_day, ticks_to_days
from features.sorted_keys import nondecreasing

DEFAULT_PENALTY_RATE = 0.0005  # 0.05 % a day on the overdue amount (DESIGN.md)


def to_days(values) -> np.ndarray:
    """datetime64 values (NaT allowed) as int64 days since 1970-01-01; NaT becomes kernels.NONE."""
    arr = np.asarray(values)
    per_day = ticks_per_day(arr.dtype) if arr.dtype.kind == "M" else 0
    if per_day:  # the raw counts, floor-divided: what a cast to days gives, compiled
        return ticks_to_days(np.ascontiguousarray(arr).view(np.int64), per_day, kernels.NONE)
    arr = np.asarray(values, dtype="datetime64[D]")
    out = arr.astype(np.int64)
    out[np.isnat(arr)] = kernels.NONE
    return out


class Prepared:
    """The tables as sorted arrays for the kernels, with settlement days and limits at statement dates.

    Days are int64 days since 1970-01-01, kernels.NONE where the day never comes. Accounts are in account_id
    order; bills, payments and limits run account by account in that order (account a's bills are rows
    bill_start[a] .. bill_start[a + 1], and so on).
    """

    def __init__(self, tables: Tables) -> None:
        self._accounts(tables.accounts)
        bills, pay, lim = tables.bills, tables.payments, tables.limits
        self.bill_start = _starts(bills["account_id"].to_numpy(np.int64), self.account_id)
        self.payment_start = _starts(pay["account_id"].to_numpy(np.int64), self.account_id)
        self.limit_start = _starts(lim["account_id"].to_numpy(np.int64), self.account_id)
        self.statement_day = to_days(bills["statement_date"])
        self.due_day = to_days(bills["due_date"])
        self.amount_due = bills["amount_due"].to_numpy(np.float64)
        self.min_due = bills["min_due"].to_numpy(np.float64)
        self.converted_day = to_days(bills["converted_date"])  # a statement made into installments
        self.has_parent_bill = bills["parent_bill_id"].notna().to_numpy()  # an installment of such a statement
        self.is_statement = kernels.statement_bills(self.bill_start, self.is_installment, self.has_parent_bill)
        self.payment_day = to_days(pay["payment_date"])
        self.payment_amount = pay["amount"].to_numpy(np.float64)
        self.payment_bill_row = tables.payment_bill_rows()  # the row of the bill each payment repays
        self.limit_effective_day = to_days(lim["effective_date"])
        self.limit_value = lim["credit_limit"].to_numpy(np.float64)
        # the first day the payments reach min_due (or the conversion day), and the day from which a bill's
        # signals no longer change: both NONE if never
        self.settled_day = kernels.settlement_days(self.bill_start, self.payment_start, self.due_day, self.min_due,
                                                   self.converted_day, self.payment_day, self.payment_amount,
                                                   self.payment_bill_row)
        self.stable_day = kernels.stable_days(self.bill_start, self.payment_start, self.settled_day,
                                              self.converted_day, self.payment_day, self.payment_bill_row)
        self.limit_at_statement = kernels.limit_at(self.statement_day, self.bill_start, self.limit_effective_day,
                                                   self.limit_value, self.limit_start)  # NaN if none yet
        self.macro = tables.macro
        self.first_day = int(min(self.open_day.min(initial=kernels.NONE), self.due_day.min(initial=kernels.NONE)))
        self.extraction = tables.extraction_date

    def _accounts(self, acc: pd.DataFrame) -> None:
        self.account_id = acc["account_id"].to_numpy(np.int64)
        self.customer_id = acc["customer_id"].to_numpy(np.int64)
        self.is_installment = (acc["product"] == "installment").to_numpy(bool)  # compared by Arrow, not objects
        self.open_day = to_days(acc["open_date"])
        self.grace_days = acc["grace_days"].to_numpy(np.int64)  # days late that are not reported
        band = acc["income_band"] if "income_band" in acc else pd.Series(np.nan, index=acc.index)
        self.income_band = pd.to_numeric(band, errors="coerce").astype(np.float64).to_numpy()  # NaN: unknown
        term = acc["loan_term"] if "loan_term" in acc else pd.Series(0, index=acc.index)
        self.loan_term = pd.to_numeric(term, errors="coerce").fillna(0).to_numpy(np.int64)  # 0: unknown
        self.charge_off_day = _day_or_never(acc, "charge_off_date")
        self.close_day = _day_or_never(acc, "close_date")  # closed by its holder, or a loan repaid at maturity
        # the day an account leaves the book: charged off or closed, whichever comes first
        self.exit_day = np.minimum(self.charge_off_day, self.close_day)
        # the source knows months only: day-exact features are missing
        self.month_precision = (acc["date_precision"] == "month").to_numpy(bool) if "date_precision" in acc else \
            np.zeros(len(acc), dtype=bool)

    def on_book(self, day) -> np.ndarray:
        """Whether each account is on the book at the end of `day` (a day, or days broadcast against the
        accounts): opened by then, and neither charged off nor closed on or before it."""
        return (self.open_day <= day) & (self.exit_day > day)

    @cached_property
    def customers(self) -> kernels.Customers:
        """Accounts grouped by customer: positions in customer order (account order within one), and each
        customer's run."""
        order = np.argsort(self.customer_id, kind="stable").astype(np.int64)
        srt = self.customer_id[order]
        return kernels.Customers(order, np.flatnonzero(np.r_[True, srt[1:] != srt[:-1], True]).astype(np.int64))

    def history(self) -> kernels.History:
        """The arrays as the kernels' named records."""
        return kernels.History(
            kernels.Accounts(self.bill_start, self.payment_start, self.limit_start, self.grace_days, self.open_day,
                             self.is_installment, self.month_precision),
            kernels.Bills(self.statement_day, self.due_day, self.amount_due, self.min_due, self.converted_day,
                          self.settled_day, self.stable_day, self.is_statement, self.has_parent_bill,
                          self.limit_at_statement),
            kernels.Payments(self.payment_day, self.payment_amount, self.payment_bill_row),
            kernels.Limits(self.limit_effective_day, self.limit_value))


def _day_or_never(acc: pd.DataFrame, column: str) -> np.ndarray:
    """An optional date column as day numbers; kernels.NONE where it is empty or the table lacks it."""
    return to_days(acc[column]) if column in acc else np.full(len(acc), kernels.NONE)


def _starts(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row offsets of each id's run in `keys` (sorted by account); length len(ids) + 1."""
    if nondecreasing(keys) and nondecreasing(ids):
        return kernels.run_starts(keys, ids)
    return np.searchsorted(keys, np.r_[ids, np.iinfo(np.int64).max], side="left").astype(np.int64)


def as_of_days(as_of: Iterable | str | pd.Timestamp, prep: Prepared | None = None) -> np.ndarray:
    """Sorted, unique as-of days; refused before any data or after the extraction date."""
    values = [as_of] if isinstance(as_of, str | pd.Timestamp | np.datetime64) else list(as_of)
    days = np.unique(_calendar_days(values))
    _within_data(days, prep)
    return days


def _calendar_days(values) -> np.ndarray:
    """Day numbers of dates (datetime64 values, timestamps or YYYY-MM-DD text), each a calendar day."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else values
    if not (isinstance(arr, np.ndarray) and arr.dtype.kind == "M"):
        try:
            arr = pd.to_datetime(pd.Series(list(values), dtype=object)).to_numpy()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"as-of dates must be dates (YYYY-MM-DD): {exc}") from None
    if np.isnat(arr).any() or (arr.astype("datetime64[D]") != arr).any():
        raise ValueError("as-of dates must be calendar days without a time of day")
    return to_days(arr)


def _within_data(days: np.ndarray, prep: Prepared | None) -> None:
    """Refuse days after the data's extraction date or before its first date (the one as-of check)."""
    if prep is not None and prep.extraction is not None and len(prep.due_day) + len(prep.open_day):
        check_as_of(days, prep.first_day, int(to_days(np.array([prep.extraction.to_datetime64()]))[0]))


class FeatureBlock:
    """Features as the builder writes them: one (features x rows) array, rows date by date in account order.

    What a batch job reads without a frame in between: a date's rows are a contiguous slice, a feature is a
    row of the array, and the model's (rows x features) matrix is one transposing copy.
    """

    def __init__(self, names: list[str], values: np.ndarray, account_id: np.ndarray, day: np.ndarray) -> None:
        self.names, self.values, self.account_id, self.day = names, values, account_id, day
        self._index = {name: i for i, name in enumerate(names)}

    def __len__(self) -> int:
        return len(self.account_id)

    def column(self, name: str) -> np.ndarray:
        return self.values[self._index[name]]

    def on(self, day: int) -> FeatureBlock:
        """The rows as of one day (a view)."""
        lo, hi = np.searchsorted(self.day, [day, day + 1])
        return FeatureBlock(self.names, self.values[:, lo:hi], self.account_id[lo:hi], self.day[lo:hi])

    def matrix(self, names: list[str]) -> np.ndarray:
        """(rows x features) in the order of `names`, C-contiguous: the compiled trees walk a row's features."""
        values = self.values if list(names) == self.names else self.values[[self._index[n] for n in names]]
        return np.ascontiguousarray(values.T)

    def frame(self) -> pd.DataFrame:
        """account_id, as_of, then the features: what build_features returns."""
        frame = pd.DataFrame(self.values.T, columns=self.names, copy=False)
        frame.insert(0, "as_of", (self.day * 86_400).view("datetime64[s]"))
        frame.insert(0, "account_id", self.account_id)
        return frame


def build_block(tables: Tables, as_of, catalog: Catalog | None = None, *,
                penalty_rate: float = DEFAULT_PENALTY_RATE) -> FeatureBlock:
    """Every catalog feature for every account open at each as-of date, as a FeatureBlock (no frame)."""
    catalog = catalog or default_catalog()
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    days = as_of_days(as_of, prep)
    layout = _layout(days, *kernels.open_days(prep.open_day, days), by_date=True)
    return _compute(prep, layout, catalog, penalty_rate)


def build_features(tables: Tables, as_of=None, catalog: Catalog | None = None, *, pairs=None,
                   penalty_rate: float = DEFAULT_PENALTY_RATE) -> pd.DataFrame:
    """Every catalog feature as known at the end of day T: for every account open at each as-of date T
    (`as_of`: one date or many), or for exactly the (account, T) `pairs` asked for.

    `pairs` is a frame or mapping with columns account_id and as_of, each account open on its date: any
    dates, repeats allowed, as training rows spread over the month or an incremental scoring ask for them.
    A pair's row is, value for value, the row the build for all accounts at its date gives that account.
    Returns account_id, as_of, then the catalog's features in order: one row per account open at each date,
    date by date in account order, for `as_of`; one row per pair, in their order, for `pairs`.
    """
    if (as_of is None) == (pairs is None):
        raise ValueError("give either as_of (dates: every account open then) or pairs (account_id, as_of)")
    catalog = catalog or default_catalog()
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    if pairs is None:
        return build_block(prep, as_of, catalog, penalty_rate=penalty_rate).frame()
    return pair_block(prep, *requested(prep, pairs), catalog, penalty_rate=penalty_rate).frame()


def pair_block(prep: Prepared, account: np.ndarray, day: np.ndarray, catalog: Catalog | None = None, *,
               penalty_rate: float = DEFAULT_PENALTY_RATE) -> FeatureBlock:
    """The features of accounts (positions in `prep`, each open on its day) as of their own days, one row per
    pair in their order, as a FeatureBlock: the training panel's rows spread over the month."""
    catalog = catalog or default_catalog()
    days = np.unique(day)
    t = np.searchsorted(days, day)
    reach = max((closed_reach(f) for f in catalog.others), default=-1)
    layout = _layout(days, *_with_customers(prep, account, t, days, reach), by_date=False)
    block = _compute(prep, layout, catalog, penalty_rate)
    entry_key = np.repeat(np.arange(len(prep.account_id)), np.diff(layout.day_start)) * len(days) + layout.day_index
    rows = layout.day_row[np.searchsorted(entry_key, account * len(days) + t)]
    return FeatureBlock(block.names, _gather_in_place(block.values, rows), block.account_id[rows], block.day[rows])


def _gather_in_place(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[:, rows] in values' own buffer, shrunk to fit: the pairs' rows without a second copy of the
    panel (the builder's array also holds the rows of the customers' other accounts). `values` must have no
    other views: its buffer is reallocated."""
    n_features, n_rows = values.shape
    if len(rows) > n_rows or not values.flags.owndata or not values.flags.c_contiguous:  # pairs may repeat
        return np.take(values, rows, axis=1)
    flat = values.reshape(-1)  # a view: the builder's array is C-ordered and owns its buffer
    for j in range(n_features):  # row j's gathered values land before row j + 1 begins: nothing unread is overwritten
        flat[j * len(rows):(j + 1) * len(rows)] = values[j, rows]
    del flat
    values.resize(n_features * len(rows), refcheck=False)  # the tail given back (realloc)
    return values.reshape(n_features, len(rows))


def requested(prep: Prepared, pairs) -> tuple[np.ndarray, np.ndarray]:
    """The accounts (positions) and as-of days of the pairs asked for, each account open on its day."""
    try:
        ids, dates = pairs["account_id"], pairs["as_of"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("pairs must have the columns account_id and as_of") from None
    ids = np.asarray(ids, dtype=np.int64)
    day = _calendar_days(dates)
    if len(ids) != len(day):
        raise ValueError(f"pairs hold {len(ids)} account_id values but {len(day)} as_of dates")
    _within_data(np.unique(day), prep)
    pos = np.searchsorted(prep.account_id, ids)
    known = pos < len(prep.account_id)
    known[known] = prep.account_id[pos[known]] == ids[known]
    if not known.all():
        raise ValueError(f"pairs name {(~known).sum()} account(s) the data does not hold: account_id "
                         f"{', '.join(map(str, ids[~known][:3]))}")
    shut = np.flatnonzero(prep.open_day[pos] > day)
    if len(shut):
        i = shut[0]
        raise ValueError(f"{len(shut)} pair(s) ask for an account before it opened, e.g. account_id {ids[i]} as of "
                         f"{day_text(day[i])} (opened {day_text(prep.open_day[pos[i]])}): an account has rows from its "
                         "opening day on")
    return pos, day


def closed_reach(feature: Feature) -> int:
    """How many days after its closing a closed account still counts in an `others` feature: over a window of
    days, the window (its bills age out of it, so the count does not grow with how far back the records go);
    over a window of bills, none (-1: its last bills would count forever)."""
    return feature.window.d if isinstance(feature.window, Days) else -1


def _with_customers(prep: Prepared, account: np.ndarray, t: np.ndarray, days: np.ndarray, reach: int):
    """Layout.day_start and day_index of the pairs (account, day index t) with, at each pair's day, every
    account of its customer that the customer's features read then: those opened by then and not closed, and
    those closed in the last `reach` days (the longest closed_reach; -1: none)."""
    groups = prep.customers
    rank = np.empty_like(groups.order)
    rank[groups.order] = np.arange(len(groups.order))
    group = np.searchsorted(groups.start, rank[account], side="right") - 1
    size = groups.start[group + 1] - groups.start[group]
    pair = np.repeat(np.arange(len(account)), size)
    member = np.arange(len(pair)) - np.repeat(np.cumsum(size) - size, size)
    mate = groups.order[groups.start[group][pair] + member]
    when = t[pair]
    day = days[when]
    counts = prep.close_day[mate] > (day - reach if reach >= 0 else day)
    keep = (prep.open_day[mate] <= day) & (counts | (mate == account[pair]))
    key = np.unique(mate[keep] * len(days) + when[keep])
    day_start = np.searchsorted(key // len(days), np.arange(len(prep.account_id) + 1)).astype(np.int64)
    return day_start, (key % len(days)).astype(np.int64)


def _layout(days: np.ndarray, day_start: np.ndarray, day_index: np.ndarray, *, by_date: bool) -> kernels.Layout:
    day_row, block_row, row_account, row_day = kernels.layout_rows(day_start, day_index, len(days), by_date,
                                                                   kernels.BLOCK)
    return kernels.Layout(days, day_start, day_index, by_date, day_row, block_row, row_account, row_day)


_CUSTOMER = ("cust_accounts", "cust_active_loans", "cust_loan_balance", "cust_other_dpd_now")
_DERIVED = ("util_now", "limit_ratio_d360", "tenure_days", "is_installment")
_ROW_DERIVED = ("installments_left", "calendar_month")  # numpy over the finished columns
_ATTRIBUTES = ("grace_days", "income_band")  # static account attributes, known from the account's opening


def _sources(catalog: Catalog, prep: Prepared) -> dict[str, str]:
    """What computes each known column: later kinds win a name, as they always have."""
    windowed = {f.name for f in catalog.windowed}
    src = dict.fromkeys(windowed, "windowed")
    src.update({f.name: "others" for f in catalog.others})
    src.update(dict.fromkeys(ACCOUNT_STATE, "state"))
    if "util_n3" in windowed and "util_n12" in windowed:
        src["util_trend"] = "derived"
    src.update(dict.fromkeys(_DERIVED + _ROW_DERIVED, "derived"))
    src.update(dict.fromkeys(_CUSTOMER, "customer"))
    src.update(dict.fromkeys(_ATTRIBUTES, "attribute"))
    src.update(dict.fromkeys(_macro_names(prep), "macro"))
    return src


def _macro_table(prep: Prepared) -> pd.DataFrame:
    macro = prep.macro
    if macro is None or not len(macro):
        macro = pd.DataFrame(columns=["month", "published_date"])
    return macro


def _macro_names(prep: Prepared) -> list[str]:
    names = [f"macro_{c}" for c in _macro_table(prep).columns if c not in ("month", "published_date")]
    return list(dict.fromkeys([*names, "macro_stress_index", "macro_unemployment_rate"]))


def _kernel_plan(catalog: Catalog, sources: dict[str, str], col: dict[str, int], penalty_rate: float):
    """What the kernel computes and where each result goes: the catalog's windowed features whose name no
    later kind takes, each `others` feature's own count per account, and the account state; a result the
    catalog does not show goes to a helper row. Returns the Plan, each result's place (catalog column, or
    -1 - helper row), the number of helper rows and the `others` features' own counts by name."""
    own = {f.name: Feature(f"_own_{f.name}", f.description, 0, "helper", f.window, f.signal, "count")
           for f in catalog.others if sources[f.name] == "others"}
    spec = [f for f in catalog.windowed if sources[f.name] == "windowed"] + list(own.values())
    kernel_names = [f.name for f in spec] + list(ACCOUNT_STATE)
    helpers = [n for n in kernel_names if n not in col]
    where = {n: col[n] if n in col else -1 - helpers.index(n) for n in kernel_names}
    windows = list(dict.fromkeys(f.window for f in spec))
    kind = np.array([w.kind for w in windows], dtype=np.int64)
    size = np.array([w.d if w.kind == 2 else w.n for w in windows], dtype=np.int64)
    fwin = np.array([windows.index(f.window) for f in spec], dtype=np.int64)
    fsig = np.array([SIGNAL_INDEX[f.signal] for f in spec], dtype=np.int64)
    fagg = np.array([kernels.AGG_CODE[f.agg] for f in spec], dtype=np.int64)
    # whole-number signals counted, summed or averaged: by running sums over the account's stable bills
    running = np.array([f.signal in kernels.INTEGER_SIGNALS and f.agg in ("count", "sum", "mean") for f in spec],
                       dtype=np.bool_)
    by_statements = kind[fwin] == kernels.STATEMENTS_WINDOW
    plan = kernels.Plan(kind, size, fwin, fsig, fagg, running,
                        np.array([where[f.name] for f in spec], dtype=np.int64),
                        np.array([where[n] for n in ACCOUNT_STATE], dtype=np.int64),
                        np.unique(fsig[running & ~by_statements]), np.unique(fsig[running & by_statements]),
                        float(penalty_rate), GROWTH_CAP)
    return plan, where, len(helpers), own


def _compute(prep: Prepared, layout: kernels.Layout, catalog: Catalog, penalty_rate: float) -> FeatureBlock:
    """The kernel writes every column straight into its place: one (columns, rows) array whose rows are the
    layout's (as-of date, account) rows; a frame's float block is that array."""
    sources = _sources(catalog, prep)
    names = catalog.names
    for f in catalog:
        if f.name not in sources:
            raise ValueError(f"catalog feature {f.name!r} is a state feature the builder does not know; "
                             "declare it with a signal, agg and window, or add it to features/builders.py")
    col = {name: i for i, name in enumerate(names)}
    plan, where, n_helpers, own = _kernel_plan(catalog, sources, col, penalty_rate)
    n_rows = len(layout.row_account)
    out = np.empty((len(names), n_rows))
    aux = np.empty((n_helpers, n_rows))
    history = prep.history()
    kernels.build(history, layout, plan, kernels.SLOTS, kernels.Output(out, aux))

    def column(name: str) -> np.ndarray:
        i = where[name]
        return out[i] if i >= 0 else aux[-1 - i]

    def target(name: str) -> np.ndarray | None:
        return out[col[name]] if name in col and sources[name] in ("derived", "customer", "others", "macro") else None

    _customer(prep, layout, column, {n: col[n] for n in _CUSTOMER if target(n) is not None},
              [(col[name], -1 - where[h.name], h.day_precision, closed_reach(h)) for name, h in own.items()],
              aux, out)
    _finish(prep, history, layout, catalog, column, target, out)
    for name in _ATTRIBUTES:
        if name in col and sources[name] == "attribute":
            out[col[name]] = getattr(prep, name)[layout.row_account]
    return FeatureBlock(names, out, prep.account_id[layout.row_account], layout.days[layout.row_day])


def _finish(prep: Prepared, history: kernels.History, layout: kernels.Layout, catalog: Catalog, column, target,
            out: np.ndarray) -> None:
    """The features derived from the kernel's columns, the macro indicators and the calendar, per row."""
    col = {name: i for i, name in enumerate(catalog.names)}
    macro_cols, macro_vals = _macro(prep, layout.days, col, target)
    empty = np.empty(0)
    trend = target("util_trend") is not None
    want = np.array([col[n] if target(n) is not None else -1 for n in ("util_trend", *_DERIVED)], dtype=np.int64)
    day_cols = np.array([col[f.name] for f in catalog if f.day_precision], dtype=np.int64)
    derived = kernels.Derived(column("util_n3") if trend else empty, column("util_n12") if trend else empty,
                              column("balance_now"), column("limit_now"), column("limit_prev_d360"))
    kernels.finish(layout, history.accounts, derived, want, macro_cols, macro_vals, day_cols, out)
    if target("installments_left") is not None:
        term = prep.loan_term[layout.row_account].astype(np.float64)
        known = prep.is_installment[layout.row_account] & (term > 0)
        out[col["installments_left"]] = np.where(known, np.maximum(term - column("bills_due"), 0.0), np.nan)
    for name in RECORD_COUNTS:  # after installments_left, which needs the whole count
        if name in col:
            np.minimum(out[col[name]], LONG_RECORD, out=out[col[name]])
    if target("calendar_month") is not None:
        month = layout.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
        out[col["calendar_month"]] = month.astype(np.float64)[layout.row_day]


def _customer(prep: Prepared, layout: kernels.Layout, column, cols: dict[str, int],
              others: list[tuple[int, int, bool, int]], aux: np.ndarray, out: np.ndarray) -> None:
    """The customer's other accounts: accounts are sorted by account id, customers may interleave. `others`
    pairs an output row with the row of aux holding each account's own count, whether that count needs
    day-exact dates, and how long a closed account still counts (closed_reach), to be summed over the
    customer's other accounts."""
    if not (cols or others) or not len(prep.customer_id):
        return
    if cols:
        wanted = np.array([cols.get(n, -1) for n in _CUSTOMER], dtype=np.int64)
        kernels.customer(prep.customers, layout, prep.close_day, prep.is_installment, column("dpd_now"),
                         column("balance_now"), wanted, out)
    if others:
        counts = kernels.OtherCounts(np.array([r for _, r, _, _ in others], dtype=np.int64),
                                     np.array([d for _, _, d, _ in others], dtype=bool),
                                     np.array([k for _, _, _, k in others], dtype=np.int64),
                                     np.array([c for c, _, _, _ in others], dtype=np.int64))
        kernels.others(prep.customers, layout, prep.close_day, prep.month_precision, aux, counts, out)


def _macro(prep: Prepared, days: np.ndarray, col: dict[str, int], target) -> tuple[np.ndarray, np.ndarray]:
    """The latest published value of each macro indicator as of T (NaN before the first publication): the
    output rows wanted and their values by date."""
    macro = _macro_table(prep)
    pub = to_days(macro["published_date"])
    order = np.argsort(pub, kind="stable")
    idx = np.searchsorted(pub[order], days, side="right") - 1
    per_t: dict[str, np.ndarray] = {}
    for name in macro.columns:
        if name in ("month", "published_date"):
            continue
        vals = macro[name].to_numpy(np.float64)[order]
        per_t[f"macro_{name}"] = np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)
    for name in ("stress_index", "unemployment_rate"):  # indicators this source does not publish: missing
        per_t.setdefault(f"macro_{name}", np.full(len(days), np.nan))
    names = [name for name in per_t if target(name) is not None]
    cols = np.array([col[name] for name in names], dtype=np.int64)
    return cols, np.array([per_t[name] for name in names]).reshape(len(names), len(days))
