"""Point-in-time correctness of the feature builder.

(a) Nothing dated after T changes a feature as of T: the builder sees the same accounts at the end of day T
    whether the history stops at T or goes on with any future (some events kept, others moved, re-sized,
    dropped or added).
(b) The compiled builder equals a slow, per-account reference (tests/pit_reference.py) that imports nothing
    from features/, on every feature and every row.

Histories are small random worlds drawn by hypothesis: 1-4 accounts (some sharing a customer), both
products, 0-8 bills each (now and then 13, so that 12-statement windows fill up), payments in parts, early,
late or never, statements converted into installments, limit histories, grace 0-3, an optional macro table,
some month-precision (bureau) accounts and some closed ones (on or after their last statement). As-of dates
are drawn from the history's own dates, the days either side and the window boundaries after them, so the
edge cases come up often: paid on the due date, on the last day of grace, in parts across T, a limit change
on T, a bill due on T, a 360-day window's first and last day.

What is known at T (and so kept when the future is cut off or rewritten): accounts opened by T; bills
issued by T (statement_date <= T), including those not yet due, whose unpaid amount is part of the balance
at T; payments, limit rows, conversions and closings dated by T; macro rows published by T. Everything else —
payments, conversions, closings and limit rows after T, bills issued after T, accounts opened after T, macro
rows published after T — is the future, free to change (a closed account gets no bill after its closing).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pit_reference import feature_names, is_day_precision, reference_features

from features.builders import build_features
from features.catalog import LONG_RECORD, default_catalog
from features.contract import Tables, validate
from features.extraction import STATED, Extraction

BASE = pd.Timestamp("2024-01-01")
PIT = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MACRO_COLUMNS = ("stress_index", "unemployment_rate")


# ------------------------------------------------------------------------------------------- the world
# Dates are day numbers after BASE while drawing; frames() turns them into dates.


@dataclass
class World:
    accounts: list[dict] = field(default_factory=list)
    bills: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    limits: list[dict] = field(default_factory=list)
    macro: list[dict] | None = None

    def dates(self) -> set[int]:
        out = {a["open_date"] for a in self.accounts} | {a["close_date"] for a in self.accounts
                                                         if a.get("close_date") is not None}
        for b in self.bills:
            out |= {b["statement_date"], b["due_date"]}
            if b["converted_date"] is not None:
                out.add(b["converted_date"])
        out |= {p["payment_date"] for p in self.payments}
        out |= {lim["effective_date"] for lim in self.limits}
        for m in self.macro or []:
            out |= {m["month"], m["published_date"]}
        return out

    def copy(self) -> World:
        return World([dict(r) for r in self.accounts], [dict(r) for r in self.bills],
                     [dict(r) for r in self.payments], [dict(r) for r in self.limits],
                     None if self.macro is None else [dict(r) for r in self.macro])


def _date(day: int | None):
    return pd.NaT if day is None or pd.isna(day) else BASE + pd.Timedelta(days=int(day))


TABLES = {
    "accounts": ("account_id", "customer_id", "product", "open_date", "grace_days", "date_precision", "close_date"),
    "bills": ("account_id", "bill_id", "statement_date", "due_date", "amount_due", "min_due", "parent_bill_id",
              "converted_date"),
    "payments": ("account_id", "bill_id", "payment_date", "amount"),
    "limits": ("account_id", "effective_date", "credit_limit"),
    "macro": ("month", "published_date", *MACRO_COLUMNS),
}


def _column(name: str, values: list):
    if name.endswith("_date") or name == "month":
        days = np.array([0 if v is None else v for v in values], dtype=np.int64)
        out = (np.datetime64(BASE.date(), "D") + days.astype("timedelta64[D]")).astype("datetime64[s]")
        out[[v is None for v in values]] = np.datetime64("NaT")
        return out
    if name == "parent_bill_id":
        return pd.array(values, dtype="Int64")
    if name in ("product", "date_precision"):
        return np.array(values, dtype=object)
    if name.endswith("_id") or name == "grace_days":
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=np.float64)


def frames(world: World) -> dict[str, pd.DataFrame]:
    """The world as contract tables (unsorted on purpose: validate sorts)."""
    out = {}
    for table, columns in TABLES.items():
        rows = getattr(world, table)
        if rows is not None:
            out[table] = pd.DataFrame({c: _column(c, [r.get(c) for r in rows]) for c in columns})
    return out


def validated(world: World) -> Tables:
    """The world as an extract taken on its last date (stated: a world may run on past today's date, and an
    extraction date derived from events is never later than today)."""
    last = max(world.dates(), default=0)
    return validate(frames(world), extraction=Extraction(_date(last), STATED))


# ---------------------------------------------------------------------------------------- strategies

amounts = st.one_of(st.just(0.0), st.integers(1, 500_000).map(lambda c: c / 100),
                    st.sampled_from([0.01, 100.0, 333.33, 1000.0]))
min_shares = st.sampled_from([0.0, 0.05, 0.1, 0.333, 0.5, 1.0])


@st.composite
def _payments_for(draw, bill: dict, grace: int, first_day: int) -> list[dict]:
    """Repayments of one bill: never, at once, or in parts; of the minimum, the whole, or less."""
    how = draw(st.sampled_from(["never", "once", "once", "parts", "parts"]))
    if how == "never":
        return []
    target = draw(st.sampled_from(["min", "min", "full", "less", "more"]))
    total = {"min": bill["min_due"], "full": bill["amount_due"], "less": round(bill["min_due"] * 0.6, 2),
             "more": round(bill["amount_due"] * 1.1 + 1, 2)}[target]
    parts = 1 if how == "once" else draw(st.integers(2, 3))
    offsets = st.one_of(st.sampled_from([-5, -1, 0, 1, 2, grace, grace + 1, 30]), st.integers(-25, 60))
    days = sorted(max(bill["due_date"] + draw(offsets), bill["statement_date"], first_day) for _ in range(parts))
    shares = [round(total * draw(st.sampled_from([0.1, 0.25, 0.5, 0.7])), 2) for _ in range(parts - 1)]
    shares.append(max(round(total - sum(shares), 2), 0.0))
    return [{"account_id": bill["account_id"], "bill_id": bill["bill_id"], "payment_date": d, "amount": a}
            for d, a in zip(days, shares, strict=True)]


@st.composite
def histories(draw) -> World:
    """Small random valid repayment histories."""
    world = World()
    n_accounts = draw(st.integers(1, 4))
    ids = sorted(draw(st.sets(st.integers(1, 60), min_size=n_accounts, max_size=n_accounts)))
    bill_id = [0]

    def new_bill_id() -> int:
        bill_id[0] += draw(st.integers(1, 3))  # gaps, and ids that do not follow due dates
        return bill_id[0]

    for account_id in ids:
        product = draw(st.sampled_from(["revolving", "installment"]))
        grace = draw(st.integers(0, 3))
        open_day = draw(st.integers(0, 60))
        world.accounts.append({
            "account_id": account_id, "customer_id": draw(st.integers(1, max(1, n_accounts - 1))),
            "product": product, "open_date": open_day, "grace_days": grace,
            "date_precision": draw(st.sampled_from(["day", "day", "day", "month"])),
            "loan_term": draw(st.sampled_from([None, 1, 3, 6])) if product == "installment" else None,
        })
        stmt = open_day + draw(st.integers(0, 20))
        own: list[dict] = []
        for _ in range(draw(st.sampled_from([*range(9), 13, 38]))):  # now and then more than 12 or 36 statements
            amount = draw(amounts)
            min_due = amount if product == "installment" else round(amount * draw(min_shares), 2)
            due = stmt + draw(st.sampled_from([0, 10, 20, 25])) if product == "revolving" else \
                stmt + draw(st.integers(0, 15))
            bill = {"account_id": account_id, "bill_id": new_bill_id(), "statement_date": stmt, "due_date": due,
                    "amount_due": amount, "min_due": min_due, "parent_bill_id": None, "converted_date": None}
            own.append(bill)
            if product == "revolving" and amount > 0 and draw(st.integers(0, 4)) == 0:
                conv = stmt + draw(st.integers(0, 45))
                bill["converted_date"] = conv
                n = draw(st.integers(1, 3))
                each = round(amount / n, 2)
                for j in range(n):
                    part = each if j < n - 1 else round(amount - each * (n - 1), 2)
                    own.append({"account_id": account_id, "bill_id": new_bill_id(), "statement_date": conv,
                                "due_date": conv + 30 * (j + 1), "amount_due": part, "min_due": part,
                                "parent_bill_id": bill["bill_id"], "converted_date": None})
            stmt += draw(st.sampled_from([7, 30, 31, 28, 45, 90]))  # 7: several bills due close together
        if draw(st.integers(0, 4)) == 0:  # closed on or after its last statement; payments may come later
            world.accounts[-1]["close_date"] = _last_statement(own, open_day) + draw(st.sampled_from([0, 1, 20, 60]))
        for bill in own:
            world.payments += draw(_payments_for(bill, grace, open_day))
        world.bills += own
        n_limits = draw(st.integers(0, 4 if product == "revolving" else 1))
        eff = draw(st.sets(st.integers(open_day - 30, open_day + 500), min_size=n_limits, max_size=n_limits))
        if eff and draw(st.booleans()):  # most lines get their first limit on the day they open
            eff = (eff - {min(eff)}) | {open_day}
        eff = sorted(eff)
        world.limits += [{"account_id": account_id, "effective_date": d,
                          "credit_limit": float(draw(st.sampled_from([0, 500, 1000, 2500, 10_000])))}
                         for d in eff]
    if draw(st.booleans()):
        months = sorted(draw(st.sets(st.integers(-1, 20), min_size=1, max_size=8)))
        world.macro = [_macro_row(m, draw(st.integers(3, 45)), draw) for m in months]
    return world


def _last_statement(bills: list[dict], open_day: int) -> int:
    """The day of an account's last statement (its opening if it has none): the earliest it may close."""
    return max([open_day, *(b["statement_date"] for b in bills)])


def _closed_by(account: dict, T: int) -> bool:
    return account.get("close_date") is not None and account["close_date"] <= T


def _month_day(m: int) -> int:
    return int(((BASE + pd.DateOffset(months=m)) - BASE).days)


def _macro_row(m: int, lag: int, draw) -> dict:
    values = st.one_of(st.floats(-5, 50), st.integers(0, 20).map(float), st.just(float("nan")))
    return {"month": _month_day(m), "published_date": _month_day(m) + lag,
            **{c: draw(values) for c in MACRO_COLUMNS}}


@st.composite
def as_of_dates(draw, world: World, n: int = 1) -> list[int]:
    """Days on and next to the history's own dates, and on the window boundaries after them."""
    seen = sorted(world.dates()) or [0]
    steps = [0, -1, 1, 29, 30, 89, 90, 179, 180, 359, 360]
    pick = st.one_of(st.builds(lambda d, k: d + k, st.sampled_from(seen), st.sampled_from(steps)),
                     st.integers(min(seen) - 5, max(seen) + 5))
    return sorted(set(draw(st.lists(pick, min_size=1, max_size=n))))


def with_anchor(world: World, days: list[int]) -> World:
    """Add an account of its own customer, opened on the first as-of date with a limit row on the last:
    every as-of date is then within the data (not before its first date, not after its extraction date),
    and the anchor is itself the case of an account with no bills."""
    out = world.copy()
    out.accounts.append({"account_id": 1000, "customer_id": 1000, "product": "revolving", "open_date": min(days),
                         "grace_days": 0, "date_precision": "day"})
    out.limits.append({"account_id": 1000, "effective_date": max(days), "credit_limit": 700.0})
    return out


def known_at(world: World, T: int) -> World:
    """Only what is known at the end of day T: the future cut off."""
    out = world.copy()
    opened = {a["account_id"] for a in out.accounts if a["open_date"] <= T}
    out.accounts = [a for a in out.accounts if a["account_id"] in opened]
    for a in out.accounts:
        if a.get("close_date") is not None and a["close_date"] > T:
            del a["close_date"]  # not closed yet (frames() reads a missing date as none)
    out.bills = [b for b in out.bills if b["account_id"] in opened and b["statement_date"] <= T]
    kept = {b["bill_id"] for b in out.bills}
    for b in out.bills:
        if b["converted_date"] is not None and b["converted_date"] > T:
            b["converted_date"] = None
    out.payments = [p for p in out.payments if p["bill_id"] in kept and p["payment_date"] <= T]
    out.limits = [r for r in out.limits if r["account_id"] in opened and r["effective_date"] <= T]
    if out.macro is not None:
        out.macro = [m for m in out.macro if m["published_date"] <= T]
    return out


@st.composite
def future_rewrites(draw, world: World, T: int) -> World:
    """The same world up to the end of day T, with a different future."""
    out = world.copy()
    later = st.integers(T + 1, T + 400)
    # payments after T: dropped, moved or re-sized (still after T), and new ones
    pays = []
    for p in out.payments:
        if p["payment_date"] > T:
            choice = draw(st.sampled_from(["keep", "drop", "move", "resize"]))
            if choice == "drop":
                continue
            if choice == "move":
                p["payment_date"] = draw(later)
            if choice == "resize":
                p["amount"] = draw(amounts)
        pays.append(p)
    for _ in range(draw(st.integers(0, 4))):
        if out.bills:
            b = draw(st.sampled_from(out.bills))
            pays.append({"account_id": b["account_id"], "bill_id": b["bill_id"], "payment_date": draw(later),
                         "amount": draw(amounts)})
    out.payments = pays
    # bills issued after T: re-sized, re-dated (still after T), dropped, and new ones; conversions after T
    parents = {b["parent_bill_id"] for b in out.bills}
    products = {a["account_id"]: a["product"] for a in out.accounts}
    bills = []
    for b in out.bills:
        if b["statement_date"] > T:
            choice = draw(st.sampled_from(["keep", "drop", "resize", "redate"]))
            if choice == "drop" and b["bill_id"] not in parents:
                out.payments = [p for p in out.payments if p["bill_id"] != b["bill_id"]]
                continue
            if choice == "resize":
                b["amount_due"] = draw(amounts)
                whole = b["parent_bill_id"] is not None or products[b["account_id"]] == "installment"
                b["min_due"] = b["amount_due"] if whole else round(b["amount_due"] * draw(min_shares), 2)
            if choice == "redate":
                b["statement_date"] = draw(later)
                b["due_date"] = b["statement_date"] + draw(st.integers(0, 30))
                if b["converted_date"] is not None:
                    b["converted_date"] = max(b["converted_date"], b["statement_date"])
        if draw(st.integers(0, 3)) == 0 and (b["converted_date"] is None or b["converted_date"] > T):
            b["converted_date"] = max(draw(later), b["statement_date"])
        bills.append(b)
    out.bills = bills
    next_id = max([b["bill_id"] for b in out.bills], default=0) + 1
    accounts = {a["account_id"]: a for a in out.accounts}
    still_open = sorted(a for a in accounts if not _closed_by(accounts[a], T))  # no bill after a closing
    for i in range(draw(st.integers(0, 3)) if still_open else 0):
        a = draw(st.sampled_from(still_open))
        stmt = max(draw(later), accounts[a]["open_date"])
        amount = draw(amounts)
        out.bills.append({"account_id": a, "bill_id": next_id + i, "statement_date": stmt,
                          "due_date": stmt + draw(st.integers(0, 30)), "amount_due": amount, "min_due": amount,
                          "parent_bill_id": None, "converted_date": None})
    # an account opened after T, for a customer who may already be there
    if draw(st.booleans()):
        new = {"account_id": 2000, "customer_id": draw(st.sampled_from([a["customer_id"] for a in out.accounts])),
               "product": draw(st.sampled_from(["revolving", "installment"])), "open_date": draw(later),
               "grace_days": 1, "date_precision": "day"}
        out.accounts.append(new)
        out.bills.append({"account_id": 2000, "bill_id": next_id + 10, "statement_date": new["open_date"],
                          "due_date": new["open_date"], "amount_due": 50.0, "min_due": 50.0,
                          "parent_bill_id": None, "converted_date": None})
        out.limits.append({"account_id": 2000, "effective_date": new["open_date"], "credit_limit": 900.0})
    # limit rows effective after T: dropped, re-valued, and new ones
    limits = []
    for r in out.limits:
        if r["effective_date"] > T:
            choice = draw(st.sampled_from(["keep", "drop", "revalue"]))
            if choice == "drop":
                continue
            if choice == "revalue":
                r["credit_limit"] = float(draw(st.integers(0, 20_000)))
        limits.append(r)
    taken = {(r["account_id"], r["effective_date"]) for r in limits}
    for _ in range(draw(st.integers(0, 3))):
        row = {"account_id": draw(st.sampled_from(sorted(accounts))), "effective_date": draw(later),
               "credit_limit": float(draw(st.integers(0, 20_000)))}
        if (row["account_id"], row["effective_date"]) not in taken:
            taken.add((row["account_id"], row["effective_date"]))
            limits.append(row)
    out.limits = limits
    # macro rows published after T: re-valued, and new months
    if out.macro is not None:
        for m in out.macro:
            if m["published_date"] > T:
                m.update({c: draw(st.floats(-5, 50)) for c in MACRO_COLUMNS})
        months = {m["month"] for m in out.macro}
        for k in draw(st.sets(st.integers(-1, 30), max_size=3)):
            if _month_day(k) not in months:
                row = _macro_row(k, 0, draw)
                row["published_date"] = max(T + 1, _month_day(k)) + draw(st.integers(0, 20))
                out.macro.append(row)
    # closings after T: kept, dropped or moved, and new ones; never before the account's last statement
    for a in accounts.values():
        close = None if _closed_by(a, T) else draw(st.sampled_from([a.get("close_date"), None, draw(later)]))
        if close is not None:
            own = [b for b in out.bills if b["account_id"] == a["account_id"]]
            a["close_date"] = max(close, _last_statement(own, a["open_date"]))
        elif not _closed_by(a, T):
            a.pop("close_date", None)
    # the contract refuses a payment dated before its bill is issued (beyond an early payment): a rewritten
    # future keeps every payment after T on or after its bill's statement
    issued = {b["bill_id"]: b["statement_date"] for b in out.bills}
    for p in out.payments:
        if p["payment_date"] > T and p["bill_id"] in issued:
            p["payment_date"] = max(p["payment_date"], issued[p["bill_id"]])
    return out


@st.composite
def histories_with_future(draw):
    world = draw(histories())
    (T,) = draw(as_of_dates(world))
    world = with_anchor(world, [T])
    return world, T, draw(future_rewrites(world, T))


@st.composite
def histories_with_as_of(draw):
    world = draw(histories())
    days = draw(as_of_dates(world, n=3))
    return with_anchor(world, days), days


# ------------------------------------------------------------------------------------------ helpers


def build(world: World, days) -> pd.DataFrame:
    return build_features(validated(world), [_date(d) for d in days])


def assert_same(got: pd.DataFrame, want: pd.DataFrame, *, atol: float = 0.0) -> None:
    """Frames equal on keys, columns and every value (NaN equals NaN), within atol."""
    assert list(got.columns) == list(want.columns)
    key = ["as_of", "account_id"]
    got = got.sort_values(key, ignore_index=True)
    want = want.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got[key], want[key])
    bad = []
    for col in got.columns[2:]:
        a, b = got[col].to_numpy(np.float64), want[col].to_numpy(np.float64)
        same = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= atol)
        for i in np.flatnonzero(~same)[:3]:
            bad.append(f"{col} at account {got['account_id'][i]} as of {got['as_of'][i]:%Y-%m-%d}: "
                       f"got {a[i]!r}, want {b[i]!r}")
    assert not bad, "features differ:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------------------- properties


@PIT
@given(histories_with_future())
def test_events_after_as_of_never_change_features(case):
    world, T, rewritten = case
    past = known_at(world, T)
    assert _canonical(known_at(rewritten, T)) == _canonical(past), "the rewrite must leave the past alone"
    seen = build(past, [T])
    assert len(seen) == sum(a["open_date"] <= T for a in world.accounts)
    # the cut-off past against a world with a whole (different) future: each drawn history is one instance of
    # "features(W at T) == features(W cut off at T)"; the rewrite keeps some future events and changes others
    pd.testing.assert_frame_equal(build(rewritten, [T]), seen, check_exact=True)


def _canonical(world: World):
    def rows(records):
        return sorted(tuple(sorted((k, repr(v)) for k, v in r.items())) for r in records or [])
    return [rows(getattr(world, name)) for name in ("accounts", "bills", "payments", "limits", "macro")]


@PIT
@given(histories_with_as_of())
def test_builder_equals_slow_reference(case):
    world, days = case
    tables = validated(world)
    got = build_features(tables, [_date(d) for d in days])
    want = reference_features(tables.loaded(), [_date(d) for d in days])
    assert_same(got, want[got.columns], atol=1e-9)


@st.composite
def histories_with_pairs(draw):
    """A history, its as-of dates, and (account, date) pairs among the accounts open then: any order,
    repeats allowed."""
    world = draw(histories())
    days = draw(as_of_dates(world, n=3))
    world = with_anchor(world, days)
    open_at = [(a["account_id"], d) for d in days for a in world.accounts if a["open_date"] <= d]
    pairs = draw(st.lists(st.sampled_from(open_at), min_size=1, max_size=8))
    return world, days, pairs


@settings(PIT, max_examples=200)
@given(histories_with_pairs())
def test_a_pairs_row_equals_the_all_accounts_row_and_the_reference(case):
    """Built for the pairs asked for, each row is the row the build for all accounts gives at its date, bit
    for bit, and the slow reference's row: the pairs change which rows are built, never what a row is."""
    world, days, pairs = case
    tables = validated(world)
    asked = pd.DataFrame({"account_id": [a for a, _ in pairs], "as_of": [_date(d) for _, d in pairs]})
    asked["as_of"] = asked["as_of"].astype("datetime64[s]")
    got = build_features(tables, pairs=asked)
    everyone = build_features(tables, [_date(d) for d in days]).set_index(["account_id", "as_of"])
    want = everyone.loc[pd.MultiIndex.from_frame(asked)].reset_index()
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert np.array_equal(got.iloc[:, 2:].to_numpy().view(np.int64), want.iloc[:, 2:].to_numpy().view(np.int64))
    reference = reference_features(tables.loaded(), [_date(d) for d in days]).set_index(["account_id", "as_of"])
    assert_same(got, reference.loc[pd.MultiIndex.from_frame(asked)].reset_index()[got.columns], atol=1e-9)


def test_reference_covers_the_catalog():
    catalog = default_catalog()
    assert feature_names() == catalog.names
    assert [f.name for f in catalog if f.day_precision] == [n for n in catalog.names if is_day_precision(n)]


# ------------------------------------------------------------------------------------ named edge cases
# Each is checked on the builder and on the reference alike: the examples pin the reference down too.


def _line(bills: list[tuple], payments: list[tuple] = (), limits: list[tuple] = ((0, 1000.0),), *, grace: int = 2,
          precision: str = "day") -> World:
    """Revolving account 1, opened on day 0: bills (bill_id, statement, due, amount, min_due[, parent, converted]),
    payments (bill_id, day, amount), limits (effective day, limit)."""
    world = World(accounts=[{"account_id": 1, "customer_id": 1, "product": "revolving", "open_date": 0,
                             "grace_days": grace, "date_precision": precision}])
    for bill_id, stmt, due, amount, min_due, *rest in bills:
        parent, converted = (*rest, None, None)[:2]
        world.bills.append({"account_id": 1, "bill_id": bill_id, "statement_date": stmt, "due_date": due,
                            "amount_due": amount, "min_due": min_due, "parent_bill_id": parent,
                            "converted_date": converted})
    world.payments = [{"account_id": 1, "bill_id": b, "payment_date": d, "amount": a} for b, d, a in payments]
    world.limits = [{"account_id": 1, "effective_date": d, "credit_limit": v} for d, v in limits]
    return world


def _builder(world: World, T: int, account: int = 1) -> dict:
    return build(with_anchor(world, [T]), [T]).set_index("account_id").loc[account].to_dict()


def _reference(world: World, T: int, account: int = 1) -> dict:
    tables = validated(with_anchor(world, [T]))
    return reference_features(tables.loaded(), [_date(T)]).set_index("account_id").loc[account].to_dict()


both = pytest.mark.parametrize("features_at", [_builder, _reference], ids=["builder", "reference"])


def _check(got: dict, want: dict) -> None:
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9, nan_ok=True), name


BILL = (1, 0, 20, 500.0, 100.0)  # statement day 0, due day 20, 500 due, 100 minimum


@both
def test_parts_straddling_as_of_leave_the_bill_unsettled(features_at):
    world = _line([BILL], [(1, 18, 60.0), (1, 23, 40.0)])
    _check(features_at(world, 21), {"part_paid_n6": 1, "dpd_now": 1, "late_n6": 1, "beyond_grace_n1": 0,
                                    "paid_ratio_n3": 60 / 500, "balance_now": 440.0, "util_now": 0.44,
                                    "ontime_streak": 0, "cure_days_n12": float("nan")})
    _check(features_at(world, 23), {"part_paid_n6": 0, "dpd_now": 0, "lag1_n1": 0, "grace_late_n1": 0,
                                    "beyond_grace_n1": 1, "cure_days_n12": 3, "penalty_d360": 0.0005 * 100 * 3,
                                    "min_only_n6": 1, "balance_now": 0.0, "paid_ratio_n3": 0.2})


@both
@pytest.mark.parametrize(("paid_on", "within", "beyond"), [(22, 1, 0), (23, 0, 1)])
def test_paid_on_the_last_day_of_grace_is_late_within_grace(features_at, paid_on, within, beyond):
    world = _line([BILL], [(1, paid_on, 100.0)], grace=2)
    _check(features_at(world, 40), {"grace_late_n1": within, "grace_late_d30": within, "beyond_grace_n1": beyond,
                                    "lag2_n1": within, "late_n6": 1, "bills_since_late": 0, "days_since_late": 20,
                                    "penalty_d360": beyond * 0.0005 * 100 * 3})


@both
def test_paid_on_the_due_date_is_on_time(features_at):
    world = _line([BILL, (2, 30, 50, 200.0, 200.0)], [(1, 20, 500.0), (2, 45, 200.0)])
    _check(features_at(world, 20), {"late_n6": 0, "ontime_streak": 1, "days_early_n6": 0, "dpd_now": 0,
                                    "bills_since_late": -1, "days_since_late": float("nan"), "min_only_n6": 0,
                                    "paid_ratio_n3": 1.0, "bills_due": 1, "days_since_due": 0})
    _check(features_at(world, 49), {"days_since_due": 29})
    _check(features_at(world, 50), {"ontime_streak": 2, "longest_ontime_streak": 2, "days_early_n6": 2.5,
                                    "days_since_due": 0})


@both
def test_nothing_paid(features_at):
    world = _line([BILL], grace=3)
    _check(features_at(world, 23), {"dpd_now": 3, "beyond_grace_n1": 0, "late3_n12": 1, "penalty_d360": 0})
    _check(features_at(world, 25), {"dpd_now": 5, "beyond_grace_n1": 1, "grace_late_n1": 0, "part_paid_n6": 0,
                                    "paid_ratio_n3": 0.0, "worst_dpd_n3": 5, "days_since_late": 5,
                                    "bills_since_late": 0, "ontime_streak": 0, "penalty_d360": 0.0005 * 100 * 5,
                                    "balance_now": 500.0, "util_n3": 0.5})


@both
def test_an_account_without_bills(features_at):
    _check(features_at(_line([]), 30), {"bills_due": 0, "lag1_n12": 0, "late_n6": 0, "dpd_now": 0,
                                        "ontime_streak": 0, "bills_since_late": -1, "worst_dpd_n3": float("nan"),
                                        "paid_ratio_n3": float("nan"), "balance_now": 0.0, "util_now": 0.0,
                                        "tenure_days": 30, "cust_accounts": 1, "cust_other_dpd_now": float("nan"),
                                        "days_since_due": float("nan")})


@both
def test_a_limit_change_on_as_of_is_in_force(features_at):
    world = _line([(1, 100, 120, 500.0, 50.0)], limits=[(0, 1000.0), (100, 2000.0)])
    _check(features_at(world, 99), {"limit_now": 1000.0, "limit_changes_d360": 0, "balance_now": 0.0})
    _check(features_at(world, 100), {"limit_now": 2000.0, "limit_changes_d360": 1, "util_now": 0.25,
                                     "limit_ratio_d360": float("nan")})
    _check(features_at(world, 120), {"util_n3": 0.25})
    _check(features_at(world, 460), {"limit_changes_d360": 0, "limit_ratio_d360": 1.0})
    _check(features_at(world, 459), {"limit_changes_d360": 1, "limit_ratio_d360": 2.0})


@both
def test_a_statement_converted_into_installments(features_at):
    world = _line([(1, 0, 20, 900.0, 90.0, None, 10), (2, 10, 40, 300.0, 300.0, 1), (3, 10, 70, 300.0, 300.0, 1),
                   (4, 10, 100, 300.0, 300.0, 1)], [(2, 40, 300.0)])
    _check(features_at(world, 9), {"balance_now": 900.0, "bills_due": 0})
    _check(features_at(world, 45), {"conversions_n12": 1, "installment_bills_n12": 1, "bills_due": 2,
                                    "days_early_n6": (10 + 0) / 2, "late_n6": 0, "dpd_now": 0, "balance_now": 600.0,
                                    "paid_ratio_n3": 1.0, "min_only_n6": 0, "util_n3": 0.9})
    _check(features_at(world, 75), {"dpd_now": 5, "late_n6": 1, "balance_now": 600.0, "paid_ratio_n3": 0.5})


@both
def test_month_precision_accounts_have_no_day_precision_features(features_at):
    world = _line([BILL], [(1, 22, 100.0)], precision="month")
    got = features_at(world, 40)
    _check(got, {"grace_late_n1": float("nan"), "lag2_n1": float("nan"), "days_since_late": float("nan"),
                 "days_since_due": float("nan"),
                 "penalty_d360": float("nan"), "days_early_n6": float("nan"), "late_n6": 1, "worst_dpd_n3": 2})


@both
def test_a_closed_accounts_record_follows_the_customer_for_a_window_of_days(features_at):
    """Account 1 paid two bills late and was closed on day 65; account 2 of the same customer opened later.
    Counts over the last 360 days on the other accounts keep account 1's late bills while they are in the
    window; counts over bill windows leave a closed account out at once."""
    world = _line([(1, 10, 30, 500.0, 100.0), (2, 40, 60, 500.0, 100.0)], [(1, 35, 500.0), (2, 65, 500.0)])
    world.accounts[0]["close_date"] = 65
    world.accounts.append({"account_id": 2, "customer_id": 1, "product": "revolving", "open_date": 100,
                           "grace_days": 2, "date_precision": "day"})
    world.bills.append({"account_id": 2, "bill_id": 3, "statement_date": 110, "due_date": 130, "amount_due": 200.0,
                        "min_due": 20.0, "parent_bill_id": None, "converted_date": None})
    world.payments.append({"account_id": 2, "bill_id": 3, "payment_date": 125, "amount": 200.0})
    world.limits.append({"account_id": 2, "effective_date": 100, "credit_limit": 1000.0})

    def second(T: int) -> dict:
        return features_at(world, T, account=2)

    _check(second(140), {"cust_other_late_d360": 2, "cust_other_late3_d360": 2, "cust_other_late30_d360": 0,
                         "cust_other_early_d360": 0, "cust_other_late_n6": 0, "cust_accounts": 1,
                         "days_since_due": 10})
    _check(second(400), {"cust_other_late_d360": 1, "cust_other_late3_d360": 1})  # the bill due on day 30 is out
    _check(second(425), {"cust_other_late_d360": 0, "cust_other_late3_d360": 0})  # closed 360 days before


# A line's short record: bill 1 paid 4 days late (a fifth of it), bill 2 overpaid on time, bills 3 and 4 paid
# late, bill 5 unpaid, bill 6 paid in full on time at twenty times bill 5's amount. The limit is 1000 throughout.
SHORT_RECORD = [(1, 0, 20, 100.0, 10.0), (2, 30, 50, 200.0, 20.0), (3, 60, 80, 400.0, 40.0),
                (4, 90, 110, 100.0, 10.0), (5, 120, 140, 50.0, 5.0), (6, 150, 170, 1000.0, 100.0)]
SHORT_PAID = [(1, 24, 20.0), (2, 48, 300.0), (3, 85, 40.0), (4, 112, 10.0), (6, 165, 1000.0)]


@both
def test_a_short_record_reports_shares_over_the_bills_it_has(features_at):
    """Two bills due: the shares are over those two, not over 36."""
    _check(features_at(_line(SHORT_RECORD, SHORT_PAID), 60), {
        "bills_due": 2, "late_share_n36": 1 / 2, "late3_share_n36": 1 / 2, "revolving_share_n36": 1 / 2,
        "worst_dpd_n36": 4, "late_run": 0, "paid_share_n1": 1.5, "paid_share_n3": (1.5 + 0.2) / 2,
        "paid_share_min_n6": 0.2, "paid_ratio_n3": (1.0 + 0.2) / 2, "paid_prev_n1": 300 / 100,
        "paid_prev_n3": 3.0, "growth_n1": 1.0, "growth_n3": 1.0, "util_change_n1": 0.2 - 0.1,
        "util_slope_n6": 0.1, "util_n6": (0.1 + 0.2) / 2})


@both
def test_three_late_months_in_a_row_then_a_bill_on_time(features_at):
    """Bills 3 and 4 paid late and bill 5 unpaid: three in a row, bills 3 and 4 already stable; bill 6 paid on
    time ends the run. The previous bill's amount is bill i - 1's, and growth is capped."""
    world = _line(SHORT_RECORD, SHORT_PAID)
    _check(features_at(world, 145), {
        "late_run": 3, "ontime_streak": 0, "late_share_n36": 4 / 5, "late3_share_n36": 3 / 5, "worst_dpd_n36": 5,
        "revolving_share_n36": 3 / 5, "paid_share_n1": 0.0, "paid_share_n3": (0 + 0.1 + 0.1) / 3,
        "paid_share_n6": (0 + 0.1 + 0.1 + 1.5 + 0.2) / 5, "paid_share_min_n6": 0.0, "paid_prev_n1": 0 / 100,
        "paid_prev_n3": (0 + 10 / 400 + 40 / 200) / 3, "growth_n1": 50 / 100 - 1,
        "growth_n3": ((50 / 100 - 1) + (100 / 400 - 1) + (400 / 200 - 1)) / 3, "util_change_n1": 0.05 - 0.1,
        "util_slope_n6": (0.1 + 0.2 - 0.3 - 0.05) / 4, "util_n6": (0.1 + 0.2 + 0.4 + 0.1 + 0.05) / 5})
    _check(features_at(world, 170), {
        "late_run": 0, "ontime_streak": 1, "late_share_n36": 4 / 6, "paid_share_n1": 1.0,
        "paid_prev_n1": 1000 / 50, "growth_n1": 10.0, "util_change_n1": 1.0 - 0.05})


@both
def test_overpaid_and_converted_bills(features_at):
    """An overpayment reads above 1 where the paid ratio stops at 1; a converted statement's payments went to
    its installments: no paid share or payment over the previous bill of its own."""
    world = _line([(1, 0, 20, 100.0, 10.0), (2, 30, 50, 200.0, 20.0, None, 40)], [(1, 18, 250.0)])
    _check(features_at(world, 30), {"paid_share_n1": 2.5, "paid_ratio_n3": 1.0, "paid_prev_n1": float("nan"),
                                    "growth_n1": float("nan"), "util_change_n1": float("nan")})
    _check(features_at(world, 50), {"paid_share_n1": float("nan"), "paid_prev_n1": float("nan"),
                                    "paid_share_n3": 2.5, "growth_n1": 1.0, "util_change_n1": 0.1})


@both
def test_a_long_late_run_is_capped_at_the_long_record(features_at):
    world = _line([(k, 30 * k, 30 * k + 20, 100.0, 10.0) for k in range(1, 41)])
    _check(features_at(world, 30 * 40 + 25), {"late_run": LONG_RECORD, "bills_due": LONG_RECORD,
                                              "late_share_n36": 1.0, "worst_dpd_n36": 30 * 36 + 5 - 30})
