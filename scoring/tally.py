"""Counts over a scoring run, added up chunk by chunk: what the manifest and the run report show.

Only counts and sums are kept (categories, flags, a histogram of score adjustments, limit actions by score
band, treatments by days past due, reason codes of adverse decisions, the guardrails that held limits back,
limits and expected losses by product and action), each computed a column at a time in the workers, so the
parent never holds the scored rows. Amounts are summed in whole cents, so the totals do not depend on how
the accounts were chunked either.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import Catalog
from models.reasons import codes_of
from policy import rules
from policy.config import Policy
from policy.rules import ALREADY_CLOSED, RULES, expected_loss
from scoring.output import REASONS

CATEGORIES = ("status", "limit_action", "collection_treatment")
FLAGS = ("early_warning", "control_cell", "adverse")
ADJUSTMENT_EDGES = np.arange(-200, 201, 10)  # points; moves beyond +-200 land in the outer bins
DPD_BUCKETS = (1, 3, 15, 30, 60, 90)  # lower edges of the days-past-due buckets of late accounts
NO_SCORE = "no score"  # the band of accounts outside the default model's scoring population
# the guardrails: the rules that hold a band's step back (no raise while late ...) or bound the target limit
# (the expected-loss budget; steps, floor and cap). Where a rule of the limit stage (freeze, a new line's or a
# cash loan's limit kept, a closed account's line gone) or the charged-off rule fired afterwards, that rule set
# the limit: the guardrail's doing did not stand and is not counted.
GUARDRAILS = tuple(r.code for r in RULES if r.stage in ("step", "target") and r is not rules.BAND)
LIMIT_SET_BY = tuple(r.code for r in RULES if r.stage == "limit" or r is rules.CHARGED_OFF)
NUMBERS = (*FLAGS, "score", "score_adjustment", "dpd_now", "pd_default", "credit_limit", "new_credit_limit")


class Tally:
    def __init__(self, policy: Policy) -> None:
        self.band_edges = sorted(b.min_score for b in policy.limit.bands)  # score band lower edges
        self.limit_policy = policy.limit  # LGD and CCF of the expected loss
        self.categories = {k: Counter() for k in CATEGORIES}
        self.flags = Counter()
        self.adjustment = np.zeros(len(ADJUSTMENT_EDGES) + 1, dtype=np.int64)
        self.band_action: Counter = Counter()
        self.dpd_treatment: Counter = Counter()
        self.reasons: Counter = Counter()  # adverse accounts giving each code, in any slot
        self.first_reasons: Counter = Counter()  # ... as the first reason
        self.guardrails: Counter = Counter()  # "code|limit action": accounts
        self.limits: Counter = Counter()  # "product|limit action|sum": accounts, or an amount in cents

    def add(self, table: pa.Table, balance: np.ndarray, fired: dict[str, np.ndarray]) -> None:
        """Count one chunk's output rows; `balance`: each row's balance now (the expected loss's drawn amount),
        `fired`: where each policy rule fired (policy.decide.decide). Text columns are counted by their codes."""
        col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in NUMBERS
               if name in table.column_names}
        text = {key: _coded(table.column(key)) for key in (*CATEGORIES, "product")}
        for key in CATEGORIES:
            values, code = text[key]
            n = np.bincount(code, minlength=len(values))
            self.categories[key].update({v or "(none)": int(k) for v, k in zip(values, n, strict=True) if k})
        for key in FLAGS:
            if key in col:
                self.flags[key] += int(np.count_nonzero(col[key]))
        adj = col["score_adjustment"]
        known = ~np.isnan(adj)
        self.flags["with_previous_score"] += int(known.sum())
        self.adjustment += np.bincount(np.searchsorted(ADJUSTMENT_EDGES, adj[known], side="right"),
                                       minlength=len(self.adjustment))
        score = col["score"].astype(np.float64)
        band = np.searchsorted(self.band_edges, score, side="right") - 1
        labels = [self._band_label(i) for i in range(len(self.band_edges))] + [NO_SCORE]
        band = np.where(np.isnan(score), len(self.band_edges), np.clip(band, 0, None))  # off the book: no score
        _pairs(self.band_action, (labels, band), text["limit_action"])
        status, status_code = text["status"]
        charged = np.isin(status_code, [i for i, v in enumerate(status) if v == "charged_off"])
        late = (col["dpd_now"] > 0) & ~charged  # charged off: recovery, not collection (closed: collected)
        bucket = np.searchsorted(DPD_BUCKETS, col["dpd_now"][late], side="right") - 1
        treatment, treatment_code = text["collection_treatment"]
        _pairs(self.dpd_treatment, ([_dpd_label(i) for i in range(len(DPD_BUCKETS))], bucket),
               (treatment, treatment_code[late]))
        self._add_reasons(table)
        self._add_guardrails(text["limit_action"], fired)
        self._add_limits(col, text["product"], text["limit_action"], balance)

    def _add_reasons(self, table: pa.Table) -> None:
        """Reason codes of the adverse decisions (with --reasons all, the others' reasons are left out)."""
        adverse = table.column("adverse")
        for slot in range(1, REASONS + 1):
            counts = pc.value_counts(pc.filter(table.column(f"reason_{slot}"), adverse))
            found = {code: n for code, n in zip(counts.field("values").to_pylist(),
                                                counts.field("counts").to_pylist(), strict=True) if code}
            self.reasons.update(found)
            if slot == 1:
                self.first_reasons.update(found)

    def _add_guardrails(self, action: tuple[list[str], np.ndarray], fired: dict[str, np.ndarray]) -> None:
        """Accounts per guardrail where it acted and no later rule set the limit, by the final limit action."""
        values, code = action
        none = np.zeros(len(code), dtype=bool)
        overruled = none.copy()
        for rule in LIMIT_SET_BY:
            overruled |= fired.get(rule, none)
        for rule in GUARDRAILS:
            n = np.bincount(code[fired.get(rule, none) & ~overruled], minlength=len(values))
            self.guardrails.update({f"{rule}|{v}": int(k) for v, k in zip(values, n, strict=True) if k})

    def _add_limits(self, col: dict[str, np.ndarray], product: tuple[list[str], np.ndarray],
                    action: tuple[list[str], np.ndarray], balance: np.ndarray) -> None:
        """Limits and expected losses (policy.rules.expected_loss) before and after, per product and action."""
        before, after = col["credit_limit"].astype(np.float64), col["new_credit_limit"].astype(np.float64)
        pd_default = col["pd_default"].astype(np.float64)
        if not len(before):
            return
        sums = {"accounts": np.ones(len(before), dtype=np.int64), "limit": _cents(before),
                "new_limit": _cents(after),
                "with_pd": (~np.isnan(pd_default)).astype(np.int64),  # off the book: no PD, no expected loss
                "expected_loss": _cents(expected_loss(pd_default, balance, before, self.limit_policy)),
                "new_expected_loss": _cents(expected_loss(pd_default, balance, after, self.limit_policy))}
        (products, p), (actions, a) = product, action
        groups, index = np.unique(p * len(actions) + a, return_inverse=True)
        keys = [f"{products[g // len(actions)]}|{actions[g % len(actions)]}" for g in groups]
        order = np.argsort(index, kind="stable")
        starts = np.searchsorted(index[order], np.arange(len(groups)))  # every group has a row
        for name, values in sums.items():
            totals = np.add.reduceat(values[order], starts)  # int64: exact, in any order
            self.limits.update({f"{k}|{name}": int(t) for k, t in zip(keys, totals, strict=True)})

    def merge(self, other: Tally) -> None:
        """Add another chunk's counts (the reduce step)."""
        for key in CATEGORIES:
            self.categories[key].update(other.categories[key])
        self.flags.update(other.flags)
        self.adjustment += other.adjustment
        for mine, theirs in ((self.band_action, other.band_action), (self.dpd_treatment, other.dpd_treatment),
                             (self.reasons, other.reasons), (self.first_reasons, other.first_reasons),
                             (self.guardrails, other.guardrails), (self.limits, other.limits)):
            mine.update(theirs)

    def _band_label(self, i: int) -> str:
        lo = self.band_edges[i]
        hi = self.band_edges[i + 1] if i + 1 < len(self.band_edges) else None
        return f"{lo:.0f}+" if hi is None else f"{lo:.0f}-{hi - 1:.0f}"

    def summary(self) -> dict:
        """Plain JSON for the manifest."""
        def table(counter: Counter) -> dict:
            out: dict = {}
            for key, n in sorted(counter.items()):
                row, column = key.split("|", 1)
                out.setdefault(row, {})[column or "(none)"] = n
            return out

        return {
            "score_adjustment": {"edges": ADJUSTMENT_EDGES.tolist(), "counts": self.adjustment.tolist()},
            "limit_action_by_score_band": table(self.band_action),
            "collection_treatment_by_dpd": table(self.dpd_treatment),
        }

    def limit_summary(self) -> dict:
        """Limits and expected losses before and after tonight's limit actions, in currency units.

        `increases` and `decreases` are the policy's raises and cuts; `closed` the lines of charged-off
        accounts and `already_closed` those of accounts closed by their holders or repaid, both set to 0 on
        every run while the account is on the books, so kept apart from `net_change`.
        """
        groups: dict = {}
        for key, value in sorted(self.limits.items()):
            product, action, name = key.split("|")
            groups.setdefault(product, {}).setdefault(action, {})[name] = value if name in ("accounts", "with_pd") \
                else value / 100
        for actions in groups.values():
            for sums in actions.values():
                sums["change"] = round(sums["new_limit"] - sums["limit"], 2)
        every = [sums | {"action": a} for actions in groups.values() for a, sums in actions.items()]

        def moved(action: str) -> dict:
            rows = [s for s in every if s["action"] == action]
            return {"accounts": sum(s["accounts"] for s in rows), "change": round(sum(s["change"] for s in rows), 2)}

        increases, decreases, closed = moved("increase"), moved("decrease"), moved("closed")
        before = round(sum(s["expected_loss"] for s in every), 2)
        after = round(sum(s["new_expected_loss"] for s in every), 2)
        return {"net_change": round(increases["change"] + decreases["change"], 2), "increases": increases,
                "decreases": decreases, "closed": closed, ALREADY_CLOSED: moved(ALREADY_CLOSED),
                "expected_loss": {"accounts": sum(s["with_pd"] for s in every), "before": before, "after": after,
                                  "change": round(after - before, 2),
                                  "lgd": self.limit_policy.lgd, "ccf": self.limit_policy.ccf},
                "by_product": groups}

    def guardrail_summary(self) -> dict:
        """Per guardrail rule: the accounts where it held the limit back and its doing stood, by final action."""
        titles = {r.code: r.title for r in RULES}
        out = {}
        for code in GUARDRAILS:
            actions = {k.split("|", 1)[1]: n for k, n in sorted(self.guardrails.items()) if k.startswith(f"{code}|")}
            out[code] = {"title": titles[code], "accounts": sum(actions.values()), "limit_action": actions}
        return out

    def reason_summary(self, titles: dict[str, str]) -> dict:
        """Reason codes of the adverse decisions, most frequent first: accounts giving each (in any slot), as
        their first reason, and their share of the adverse accounts."""
        adverse = self.flags.get("adverse", 0)
        codes = sorted(self.reasons, key=lambda c: (-self.reasons[c], c))
        return {"adverse": adverse, "codes": [
            {"code": c, "title": titles.get(c, ""), "accounts": self.reasons[c], "first": self.first_reasons.get(c, 0),
             "share": round(self.reasons[c] / adverse, 4) if adverse else 0.0} for c in codes]}


def reason_titles(feature_names: list[str], catalog: Catalog) -> dict[str, str]:
    """What each reason code stands for: a rule's title (P..), a model feature's description (R.., numbered
    as models.reasons numbers them)."""
    return {**{r.code: r.title for r in RULES if r.reason},
            **{c: catalog[n].description for c, n in zip(codes_of(feature_names, catalog), feature_names, strict=True)}}


def _coded(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """A text column as (its distinct values, each row's index among them)."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _pairs(counter: Counter, rows: tuple[list[str], np.ndarray], columns: tuple[list[str], np.ndarray]) -> None:
    """Count (row label, column label) pairs as "row|column", from each row's indices into the two lists."""
    (row_labels, r), (column_labels, c) = rows, columns
    n = np.bincount(r * len(column_labels) + c, minlength=len(row_labels) * len(column_labels))
    for k in np.flatnonzero(n):
        counter[f"{row_labels[k // len(column_labels)]}|{column_labels[k % len(column_labels)]}"] += int(n[k])


def _cents(amount: np.ndarray) -> np.ndarray:
    """Whole cents (0 for a missing amount), so sums are exact and do not depend on the order of adding."""
    return np.rint(np.nan_to_num(amount) * 100).astype(np.int64)


def _dpd_label(i: int) -> str:
    lo = DPD_BUCKETS[i]
    return f"{lo}+ DPD" if i + 1 == len(DPD_BUCKETS) else f"{lo}-{DPD_BUCKETS[i + 1] - 1} DPD"
