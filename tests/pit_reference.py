"""A slow, obviously correct reference for the feature catalog, to check the builder against.

It imports nothing from ``features/``: it reads the plain tables and, for every as-of date T and every
account open at T, walks that account's bills one by one, newest first, and computes each feature the way
its catalog description (and DESIGN.md's conventions) say. No arrays, no pointers, no vectorisation:
speed is not the point, being easy to check by reading is.

Conventions (DESIGN.md), all as known at the end of day T:

* a bill counts once it has fallen due: due_date <= T; *newest first* = due date, statement date, bill_id,
  all descending;
* a bill is *settled* on the earliest of: the first day on which the payments made so far reach its
  min_due (1e-9 tolerance), its converted_date, and — for a bill with nothing due (min_due <= 1e-9) — its
  due date. Only days <= T count: a settlement after T has not happened yet;
* lag = settled day - due date; DPD = T - due date for a bill due and not settled; *late* = lag >= 1, or
  unsettled with DPD >= 1; *late within grace* = lag 1..grace_days;
* a revolving *statement* is a bill of a revolving account without parent_bill_id; the limit at a
  statement is the limit row with the latest effective_date <= statement_date;
* a window of the last N bills (statements) counts the N newest bills (statements) due by T; a window of
  D days holds the bills with due_date in (T - D, T]; a shortened record's window holds what there is;
* a bill's *previous* bill (statement) is the next older one of the same account in that order.

Definitions of the state features follow features/kernels.py (read, not imported): e.g. a "limit change"
is any limit row after the account's first one, and the balance is what is unpaid on bills issued by T
and not settled by T.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

# the cap of whole-record counts and of a bill's growth: declared numbers, not logic
from features.catalog import GROWTH_CAP, LONG_RECORD

PENALTY_RATE = 0.0005  # a day, on the minimum due, for each day late once beyond grace
SETTLE_TOL = 1e-9  # payments reach min_due when within this of it
FULL_TOL = 0.005  # a statement counts as paid in full when at most half a cent short
NAN = math.nan

BILL_WINDOWS = (1, 3, 6, 12)
DAY_WINDOWS = (30, 90, 180, 360)

# Features that need day-exact dates: missing (NaN) for month-precision accounts. Derived from the
# names: the short-lag counts, days early, cure days, penalty and days since late.
_DAY_PREFIXES = ("lag1_", "lag2_", "grace_late_", "beyond_grace_", "early_", "days_early_", "cure_days_",
                 "penalty_")


def is_day_precision(name: str) -> bool:
    return name.removeprefix("cust_other_").startswith(_DAY_PREFIXES) or name in ("days_since_late",
                                                                                   "days_since_due")


def feature_names() -> list[str]:
    """Every feature this reference computes (the names of the default catalog)."""
    windows = [f"n{n}" for n in BILL_WINDOWS] + [f"d{d}" for d in DAY_WINDOWS]
    short = [f"{p}_{w}" for w in windows for p in ("lag1", "lag2", "grace_late", "beyond_grace")]
    return [
        *short,
        "dpd_now", "worst_dpd_n3", "worst_dpd_n12", "worst_dpd_n36", "worst_dpd_d360", "late_n6", "late_n12",
        "late3_n12", "late30_n12", "late30_d360", "late_n36", "late3_n36", "late_share_n36", "late3_share_n36",
        "depth_mean_n36", "bills_since_late", "days_since_late", "ontime_streak", "late_run",
        "longest_ontime_streak",
        "paid_ratio_n3", "paid_ratio_n6", "paid_ratio_n12", "paid_ratio_n36", "paid_share_n1", "paid_share_n3",
        "paid_share_n6", "paid_share_min_n6", "paid_prev_n1", "paid_prev_n3", "early_n1", "early_n3", "early_n6",
        "early_n12", "early_n36", "min_only_n1", "min_only_n6", "min_only_n12", "revolving_share_n36",
        "part_paid_n6", "days_early_n6", "cure_days_n12", "penalty_d360",
        "util_n1", "util_n3", "util_n6", "util_n12", "util_trend", "util_change_n1", "util_slope_n6", "util_max_n12",
        "util_now", "balance_now", "limit_now", "limit_changes_d360", "limit_ratio_d360", "conversions_n12",
        "installment_bills_n12", "amount_mean_n6", "growth_n1", "growth_n3", "bills_due", "days_since_due",
        "tenure_days", "installments_left", "is_installment", "grace_days", "income_band",
        "cust_accounts", "cust_other_dpd_now", "cust_other_late_n6", "cust_other_late3_n12", "cust_other_late_n36",
        "cust_other_early_n6", "cust_other_min_only_n6", "cust_active_loans", "cust_loan_balance",
        "cust_other_late_d360", "cust_other_late3_d360", "cust_other_late30_d360", "cust_other_early_d360",
        "macro_stress_index", "macro_unemployment_rate", "calendar_month",
    ]


def _day(value) -> int | None:
    """A date as a day number (proleptic ordinal); None for a missing date."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).toordinal()


@dataclass
class Bill:
    bill_id: int
    statement: int
    due: int
    amount: float
    min_due: float
    converted: int | None
    is_statement: bool
    is_installment_bill: bool
    limit_at_statement: float
    payments: list[tuple[int, float]] = field(default_factory=list)  # (day, amount) in table order

    def paid_by(self, T: int) -> float:
        total = 0.0
        for day, amount in sorted(self.payments, key=lambda p: p[0]):  # stable: same-day parts keep order
            if day <= T:
                total += amount
        return total

    def settled_on(self, T: int) -> int | None:
        """The day the bill was settled, if that happened by the end of day T."""
        candidates = []
        so_far = 0.0
        if self.min_due <= SETTLE_TOL:  # nothing due: settled on the due date, whatever was paid
            if self.due <= T:
                candidates.append(self.due)
        else:
            for day, amount in sorted(self.payments, key=lambda p: p[0]):
                if day > T:
                    break
                so_far += amount
                if so_far >= self.min_due - SETTLE_TOL:
                    candidates.append(day)
                    break
        if self.converted is not None and self.converted <= T:
            candidates.append(self.converted)
        return min(candidates) if candidates else None


@dataclass
class Account:
    account_id: int
    customer_id: int
    installment: bool
    open_day: int
    grace: int
    month_precision: bool
    income_band: float
    loan_term: int  # 0: unknown
    bills: list[Bill]
    limits: list[tuple[int, float]]  # (effective day, limit), by effective day
    close_day: int | None = None  # closed by its holder or repaid: no longer the customer's from that day

    def closed_by(self, T: int) -> bool:
        return self.close_day is not None and self.close_day <= T


def _term(value) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def _band(value) -> float:
    return NAN if value is None or pd.isna(value) else float(value)


def _limit_on(limits: list[tuple[int, float]], day: int) -> float:
    """The limit in force on `day`: the row with the latest effective day <= day (NaN if none)."""
    value = NAN
    for effective, limit in sorted(limits):
        if effective <= day:
            value = limit
    return value


def _accounts(frames: Mapping[str, pd.DataFrame]) -> list[Account]:
    acc, bills, pays, lims = frames["accounts"], frames["bills"], frames["payments"], frames["limits"]
    limits: dict[int, list[tuple[int, float]]] = {}
    for row in lims.to_dict("records"):
        limits.setdefault(int(row["account_id"]), []).append((_day(row["effective_date"]),
                                                             float(row["credit_limit"])))
    payments: dict[int, list[tuple[int, float]]] = {}
    for row in pays.to_dict("records"):
        payments.setdefault(int(row["bill_id"]), []).append((_day(row["payment_date"]), float(row["amount"])))
    accounts = acc.to_dict("records")
    installment_account = {int(r["account_id"]): r["product"] == "installment" for r in accounts}
    by_account: dict[int, list[Bill]] = {}
    for row in bills.to_dict("records"):
        a = int(row["account_id"])
        parent = not pd.isna(row.get("parent_bill_id"))
        stmt = _day(row["statement_date"])
        by_account.setdefault(a, []).append(Bill(
            bill_id=int(row["bill_id"]), statement=stmt, due=_day(row["due_date"]), amount=float(row["amount_due"]),
            min_due=float(row["min_due"]), converted=_day(row.get("converted_date")),
            is_statement=not installment_account[a] and not parent, is_installment_bill=parent,
            limit_at_statement=_limit_on(limits.get(a, []), stmt), payments=payments.get(int(row["bill_id"]), []),
        ))
    out = []
    for row in accounts:
        a = int(row["account_id"])
        out.append(Account(a, int(row["customer_id"]), row["product"] == "installment", _day(row["open_date"]),
                           int(row["grace_days"]), row.get("date_precision", "day") == "month",
                           _band(row.get("income_band")), _term(row.get("loan_term")), by_account.get(a, []),
                           sorted(limits.get(a, [])), _day(row.get("close_date"))))
    return out


def _signals(bill: Bill, T: int, grace: int, before: list[Bill]) -> dict[str, float]:
    """Every per-bill signal of a bill due by T, as of T (NaN where the signal has no value); `before` holds
    the account's older bills, newest first."""
    settle = bill.settled_on(T)
    settled = settle is not None
    converted = bill.converted is not None and bill.converted <= T
    paid = bill.paid_by(T)
    lag = settle - bill.due if settled else None
    dpd = T - bill.due
    days_late = lag if settled else dpd
    depth = max(lag, 0) if settled else dpd
    late = (settled and lag >= 1) or (not settled and dpd >= 1)
    s: dict[str, float] = {}
    s["lag1"] = float(settled and lag == 1)
    s["lag2"] = float(settled and lag == 2)
    s["late_within_grace"] = float(settled and 1 <= lag <= grace)
    s["late_beyond_grace"] = float(days_late > grace)
    s["late"] = float(late)
    s["depth"] = float(depth)
    s["late3"] = float(depth >= 3)
    s["late30"] = float(depth >= 30)
    s["paid_ratio"] = min(paid, bill.amount) / bill.amount if bill.amount > 0 and not converted else NAN
    limit = bill.limit_at_statement
    s["util"] = bill.amount / limit if bill.is_statement and limit > 0 else NAN  # NaN > 0 is False
    s["min_only"] = float(bill.is_statement and settled and not converted and paid < bill.amount - FULL_TOL)
    s["part_paid"] = float(not settled and 0 < paid < bill.min_due)
    s["days_early"] = float(max(-lag, 0)) if settled else NAN
    s["cure_days"] = float(lag) if settled and lag >= 1 else NAN
    s["penalty"] = PENALTY_RATE * bill.min_due * days_late if days_late > grace else 0.0
    s["converted"] = float(converted)
    s["installment"] = float(bill.is_installment_bill)
    s["amount"] = bill.amount
    s["early"] = float(settled and lag <= -1)
    s["paid_share"] = paid / bill.amount if bill.amount > 0 and not converted else NAN
    prev = before[0].amount if before else 0.0
    s["paid_prev"] = paid / prev if prev > 0 and not converted else NAN
    s["growth"] = min(bill.amount / prev - 1, GROWTH_CAP) if prev > 0 else NAN
    s["util_change"] = NAN
    older = [b for b in before if b.is_statement]
    if bill.is_statement and older and older[0].limit_at_statement > 0 and limit > 0:
        s["util_change"] = s["util"] - older[0].amount / older[0].limit_at_statement
    s["_ontime"] = float(settled and lag <= 0)
    s["_unsettled"] = float(not settled)
    s["_unpaid"] = max(bill.amount - paid, 0.0) if not settled and not converted else 0.0
    return s


def _agg(values: list[float], how: str) -> float:
    present = [v for v in values if not math.isnan(v)]
    if how in ("count", "sum"):
        return float(sum(present))
    if not present:
        return NAN
    if how == "mean":
        return sum(present) / len(present)
    return min(present) if how == "min" else max(present)


def _windowed(rows: list[tuple[Bill, dict]], T: int) -> dict[str, float]:
    """The windowed aggregates, from (bill, signals) pairs of the bills due by T, newest first."""
    statements = [r for r in rows if r[0].is_statement]
    windows = {f"n{n}": rows[:n] for n in (*BILL_WINDOWS, 36)}
    windows |= {f"s{n}": statements[:n] for n in (1, 3, 6, 12, 36)}
    windows |= {f"d{d}": [r for r in rows if T - d < r[0].due <= T] for d in DAY_WINDOWS}

    def agg(signal: str, window: str, how: str) -> float:
        return _agg([s[signal] for _, s in windows[window]], how)

    f: dict[str, float] = {}
    for w in [f"n{n}" for n in BILL_WINDOWS] + [f"d{d}" for d in DAY_WINDOWS]:
        f[f"lag1_{w}"] = agg("lag1", w, "count")
        f[f"lag2_{w}"] = agg("lag2", w, "count")
        f[f"grace_late_{w}"] = agg("late_within_grace", w, "count")
        f[f"beyond_grace_{w}"] = agg("late_beyond_grace", w, "count")
    f["worst_dpd_n3"] = agg("depth", "n3", "max")
    f["worst_dpd_n12"] = agg("depth", "n12", "max")
    f["worst_dpd_n36"] = agg("depth", "n36", "max")
    f["late_share_n36"] = agg("late", "n36", "mean")
    f["late3_share_n36"] = agg("late3", "n36", "mean")
    f["revolving_share_n36"] = agg("min_only", "s36", "mean")
    f["worst_dpd_d360"] = agg("depth", "d360", "max")
    f["late_n6"] = agg("late", "n6", "count")
    f["late_n12"] = agg("late", "n12", "count")
    f["late3_n12"] = agg("late3", "n12", "count")
    f["late30_n12"] = agg("late30", "n12", "count")
    f["late30_d360"] = agg("late30", "d360", "count")
    f["late_n36"] = agg("late", "n36", "count")
    for signal in ("late", "late3", "early"):  # own counts the customer's other accounts sum (late30_d360 is out)
        f[f"{signal}_d360"] = agg(signal, "d360", "count")
    f["late3_n36"] = agg("late3", "n36", "count")
    f["depth_mean_n36"] = agg("depth", "n36", "mean")
    for n in (3, 6, 12):
        f[f"paid_ratio_n{n}"] = agg("paid_ratio", f"n{n}", "mean")
    f["paid_ratio_n36"] = agg("paid_ratio", "n36", "mean")
    for n in (1, 3, 6):
        f[f"paid_share_n{n}"] = agg("paid_share", f"n{n}", "mean")
    f["paid_share_min_n6"] = agg("paid_share", "n6", "min")
    f["paid_prev_n1"] = agg("paid_prev", "n1", "mean")
    f["paid_prev_n3"] = agg("paid_prev", "n3", "mean")
    f["growth_n1"] = agg("growth", "n1", "mean")
    f["growth_n3"] = agg("growth", "n3", "mean")
    for n in (1, 3, 6, 12, 36):
        f[f"early_n{n}"] = agg("early", f"n{n}", "count")
    f["min_only_n1"] = agg("min_only", "s1", "count")
    f["min_only_n6"] = agg("min_only", "s6", "count")
    f["min_only_n12"] = agg("min_only", "s12", "count")
    f["part_paid_n6"] = agg("part_paid", "n6", "count")
    f["days_early_n6"] = agg("days_early", "n6", "mean")
    f["cure_days_n12"] = agg("cure_days", "n12", "mean")
    f["penalty_d360"] = agg("penalty", "d360", "sum")
    f["util_n1"] = agg("util", "s1", "mean")
    f["util_n3"] = agg("util", "s3", "mean")
    f["util_n6"] = agg("util", "s6", "mean")
    f["util_n12"] = agg("util", "s12", "mean")
    f["util_change_n1"] = agg("util_change", "s1", "mean")
    f["util_slope_n6"] = agg("util_change", "s6", "mean")
    f["util_max_n12"] = agg("util", "s12", "max")
    f["conversions_n12"] = agg("converted", "s12", "count")
    f["installment_bills_n12"] = agg("installment", "n12", "count")
    f["amount_mean_n6"] = agg("amount", "n6", "mean")
    return f


def _account_at(account: Account, T: int) -> dict[str, float]:
    """Every feature of one account as of T except the customer and macro ones."""
    due = [b for b in account.bills if b.due <= T]
    due.sort(key=lambda b: (b.due, b.statement, b.bill_id), reverse=True)  # newest first
    rows = [(b, _signals(b, T, account.grace, due[k + 1:])) for k, b in enumerate(due)]
    f = _windowed(rows, T)

    f["dpd_now"] = float(max([T - b.due for b, s in rows if s["_unsettled"]], default=0))
    late_at = [k for k, (_, s) in enumerate(rows) if s["late"]]
    f["bills_since_late"] = float(late_at[0]) if late_at else -1.0
    f["days_since_late"] = float(T - rows[late_at[0]][0].due) if late_at else NAN
    streak = 0
    for _, s in rows:
        if not s["_ontime"]:
            break
        streak += 1
    f["ontime_streak"] = float(min(streak, LONG_RECORD))
    late_run = 0
    for _, s in rows:
        if not s["late"]:
            break
        late_run += 1
    f["late_run"] = float(min(late_run, LONG_RECORD))
    longest = run = 0
    for _, s in rows:
        run = run + 1 if s["_ontime"] else 0
        longest = max(longest, run)
    f["longest_ontime_streak"] = float(min(longest, LONG_RECORD))
    f["bills_due"] = float(min(len(rows), LONG_RECORD))
    f["days_since_due"] = float(T - rows[0][0].due) if rows else NAN

    balance = sum(s["_unpaid"] for _, s in rows)
    for b in account.bills:  # issued by T, not yet due, not settled or converted by T
        if b.statement <= T < b.due and b.settled_on(T) is None:
            balance += max(b.amount - b.paid_by(T), 0.0)
    f["balance_now"] = balance
    limit = _limit_on(account.limits, T)
    f["limit_now"] = limit
    f["util_now"] = balance / limit if limit > 0 else NAN
    f["util_trend"] = f["util_n3"] - f["util_n12"]
    f["limit_changes_d360"] = float(sum(1 for k, (eff, _) in enumerate(account.limits)
                                        if k > 0 and T - 360 < eff <= T))
    before = _limit_on(account.limits, T - 360)
    f["limit_ratio_d360"] = limit / before if before > 0 else NAN
    f["tenure_days"] = float(T - account.open_day)
    f["is_installment"] = float(account.installment)
    f["installments_left"] = float(max(account.loan_term - len(rows), 0)) if account.installment and \
        account.loan_term > 0 else NAN
    f["calendar_month"] = float(pd.Timestamp.fromordinal(T).month)
    f["grace_days"] = float(account.grace)
    f["income_band"] = account.income_band
    if account.month_precision:
        for name in list(f):
            if is_day_precision(name):
                f[name] = NAN
    return f


def _macro_at(macro: pd.DataFrame | None, T: int) -> dict[str, float]:
    """The latest published value of each indicator (by publication day, then month)."""
    out = {"macro_stress_index": NAN, "macro_unemployment_rate": NAN}
    if macro is None or not len(macro):
        return out
    best = None
    for row in macro.to_dict("records"):
        key = (_day(row["published_date"]), _day(row["month"]))
        if key[0] <= T and (best is None or key > best[0]):
            best = (key, row)
    if best is not None:
        for name in ("stress_index", "unemployment_rate"):
            value = best[1].get(name, NAN)
            out[f"macro_{name}"] = NAN if value is None or pd.isna(value) else float(value)
    return out


def reference_features(frames: Mapping[str, pd.DataFrame], as_of: Iterable) -> pd.DataFrame:
    """One row per account open at each T (open_date <= T): account_id, as_of, then every feature."""
    accounts = _accounts(frames)
    days = sorted({_day(t) for t in as_of})
    records = []
    for T in days:
        open_now = [a for a in accounts if a.open_day <= T]
        own = {a.account_id: _account_at(a, T) for a in open_now}
        macro = _macro_at(frames.get("macro"), T)
        for a in open_now:
            f = dict(own[a.account_id])
            family = [o for o in open_now if o.customer_id == a.customer_id and not o.closed_by(T)]
            others = [o for o in family if o.account_id != a.account_id]
            loans = [o for o in family if o.installment and own[o.account_id]["balance_now"] > 0]
            f["cust_accounts"] = float(len(family))
            f["cust_other_dpd_now"] = max((own[o.account_id]["dpd_now"] for o in others), default=NAN)
            for name in ("late_n6", "late3_n12", "late_n36", "early_n6", "min_only_n6"):
                mine = f"cust_other_{name}"
                f[mine] = float(sum(own[o.account_id][name] for o in others))
                if a.month_precision and is_day_precision(mine):
                    f[mine] = NAN
            # closed in the window too: their bills age out of it
            everyone = [o for o in open_now if o.customer_id == a.customer_id and o.account_id != a.account_id
                        and not o.closed_by(T - 360)]
            for name in ("late_d360", "late3_d360", "late30_d360", "early_d360"):
                mine = f"cust_other_{name}"
                f[mine] = float(sum(own[o.account_id][name] for o in everyone))
                if a.month_precision and is_day_precision(mine):
                    f[mine] = NAN
            f["cust_active_loans"] = float(len(loans))
            f["cust_loan_balance"] = float(sum(own[o.account_id]["balance_now"] for o in loans))
            f |= macro
            records.append({"account_id": a.account_id,
                            "as_of": pd.Timestamp.fromordinal(T).to_datetime64().astype("datetime64[s]"), **f})
    columns = ["account_id", "as_of", *feature_names()]
    out = pd.DataFrame.from_records(records, columns=columns)
    out["account_id"] = out["account_id"].astype("int64")
    out["as_of"] = out["as_of"].astype("datetime64[s]")
    return out.sort_values(["as_of", "account_id"], ignore_index=True)

