"""The modelling panel: features and labels for monthly as-of days, with honest bookkeeping.

Each row is (account, as-of day T), one a month: the month end, or a seeded day of the month (`as_of_pairs`);
the catalog's features as of T and each target's label from after T.
A target's label is kept only where the account is in that target's population and its performance
window ended by the data's extraction date; rows with no usable label at all are left out, and both
counts are reported, so nobody mistakes an unfinished window for a good outcome.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from features.builders import Prepared, pair_block
from features.catalog import Catalog
from features.labels import pair_labels
from features.outcomes import BillOutcomes
from features.stable_hash import account_uniforms
from features.targets import SLOT, TARGET_NAMES, LabelConfig


@dataclass(frozen=True)
class Panel:
    frame: pd.DataFrame  # account_id, as_of, features..., one column per target (NaN where not usable)
    feature_names: list[str]
    counts: pd.DataFrame  # per target: in population, incomplete window (dropped), usable rows, bad rate
    # the features as one (features x rows) float64 array; the frame's feature columns are views of it when the
    # panel is built here. Given none, it is copied from the frame's columns.
    values: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the histories' monthly outcomes, for features fitted at training time (the latent-state filter)
    history: BillOutcomes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values is None:
            values = np.empty((len(self.feature_names), len(self.frame)), np.float64)
            for j, name in enumerate(self.feature_names):
                values[j] = self.frame[name].to_numpy(np.float64)
            object.__setattr__(self, "values", values)
        elif self.values.shape != (len(self.feature_names), len(self.frame)) or not self.values.flags.c_contiguous:
            raise ValueError(f"values must be a C-ordered (features, rows) array of shape "
                             f"{(len(self.feature_names), len(self.frame))}, got {self.values.shape}")

    @classmethod
    def over(cls, values: np.ndarray, names: list[str], account_id: np.ndarray, as_of: np.ndarray,
             labels: dict[str, np.ndarray], counts: pd.DataFrame, history: BillOutcomes | None = None) -> Panel:
        """A panel whose frame's feature columns are views of `values` (features x rows), not a copy: keys
        first, then the features, then one column per target."""
        frame = pd.DataFrame(values.T, columns=names, copy=False)
        frame.insert(0, "as_of", as_of)
        frame.insert(0, "account_id", account_id)
        for t, label in labels.items():
            frame[t] = label
        return cls(frame, list(names), counts, values, history)

    def extended(self, names: list[str], block: np.ndarray) -> Panel:
        """This panel with more features: `block` (rows x features) appended after the present ones."""
        clash = sorted(set(names) & set(self.feature_names))
        if clash:
            raise ValueError(f"the panel already has feature(s) {', '.join(clash)}")
        values = np.concatenate([self.values, np.asarray(block, dtype=np.float64).T], axis=0)
        labels = {c: self.frame[c].to_numpy() for c in self.frame.columns
                  if c not in self.feature_names and c not in ("account_id", "as_of")}
        return Panel.over(values, [*self.feature_names, *names], self.frame["account_id"].to_numpy(),
                          self.frame["as_of"].to_numpy(), labels, self.counts, self.history)

    def without(self, names: list[str]) -> Panel:
        """This panel without the features `names` (their values copied out of the array, the rest kept)."""
        keep = [j for j, n in enumerate(self.feature_names) if n not in set(names)]
        labels = {c: self.frame[c].to_numpy() for c in self.frame.columns
                  if c not in self.feature_names and c not in ("account_id", "as_of")}
        return Panel.over(np.ascontiguousarray(self.values[keep]), [self.feature_names[j] for j in keep],
                          self.frame["account_id"].to_numpy(), self.frame["as_of"].to_numpy(), labels, self.counts,
                          self.history)

    @cached_property
    def month(self) -> np.ndarray:
        """The month end of each row's as-of day, the month it belongs to in time slices (found once: the
        trainer's slices, bin rows and calibration by month all read it)."""
        return month_end_of(self.frame["as_of"].to_numpy())

    @property
    def matrix(self) -> np.ndarray:
        """Every row's features, rows x features in column-major order (a view: LightGBM and the compiled
        predictor read it as it is)."""
        return self.values.T

    def target(self, name: str) -> pd.DataFrame:
        """The rows usable for one target: features and a 0/1 label."""
        rows = self.frame[self.frame[name].notna()]
        return rows[["account_id", "as_of", *self.feature_names, name]]

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The features of the rows at `positions`, float64 (rows x features) in column-major order, gathered
        feature by feature."""
        return np.take(self.values, positions, axis=1).T


def month_end_of(as_of) -> np.ndarray:
    """The month end of each as-of date (datetime64[s]): the month a row belongs to in time slices."""
    months = np.asarray(as_of).astype("datetime64[M]")
    return ((months + 1).astype("datetime64[D]") - 1).astype("datetime64[s]")


def month_ends(start, end) -> list[pd.Timestamp]:
    return list(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="ME"))


AS_OF_SALT = "dynascore-as-of-day"


def as_of_pairs(prep: Prepared, dates: list[pd.Timestamp], month_end_share: float = 1.0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One as-of day per customer and month, for every account on the book that day: (account positions,
    days), date by date in account order.

    With `month_end_share` 1 every row is a month end. Below 1, a stable hash of (customer, month, seed) keeps
    that share of the customer-months at the month end and spreads the others uniformly over the month's
    days: the nightly job runs on any day, and at month ends almost no account is 1-9 days past due (bills
    fall due early in the month), so models trained on month ends alone never see the states a mid-month
    run scores. A customer's accounts share their day, as they share a night's run.
    """
    if not 0.0 < month_end_share <= 1.0:
        raise ValueError(f"month_end_share must be in (0, 1], got {month_end_share}")
    accounts, days = [], []
    for end in dates:
        last = int(np.datetime64(end.date(), "D").astype(np.int64))
        if month_end_share < 1.0:
            u = account_uniforms(prep.customer_id, f"{AS_OF_SALT}-{seed}-{end:%Y-%m}")
            spread = np.minimum((u - month_end_share) / (1.0 - month_end_share), np.nextafter(1.0, 0.0))
            day = np.where(u < month_end_share, last, last - end.day + 1 + np.floor(spread * end.day).astype(np.int64))
        else:
            day = np.full(len(prep.account_id), last)
        on = np.flatnonzero(prep.on_book(day))
        accounts.append(on)
        days.append(day[on])
    account, day = np.concatenate(accounts), np.concatenate(days)
    order = np.lexsort((account, day))
    return account[order], day[order]


def build_panel(tables, start, end, catalog: Catalog | None = None, config: LabelConfig | None = None, *,
                month_end_share: float = 1.0, seed: int = 0) -> Panel:
    """Features and labels for every month in [start, end]: as of its end, or as of a day spread over it for
    1 - `month_end_share` of the customers (see `as_of_pairs`)."""
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    dates = month_ends(start, end)
    if not dates:
        raise ValueError(f"no month end between {start} and {end}: widen the as-of range")
    account, day = as_of_pairs(prep, dates, month_end_share, seed)
    out, complete = pair_labels(prep, account, day, config)
    in_any = ~np.isnan(out).all(axis=1)  # in some target's population (a repaid loan is in none)
    rows = []
    for t in TARGET_NAMES:
        label, done = out[:, SLOT[t]], complete[:, SLOT[t]]  # views: the mask below writes into `out`
        in_pop = ~np.isnan(label)
        label[~done] = np.nan
        usable = ~np.isnan(label)
        rows.append({"target": t, "in_population": int(in_pop.sum()), "incomplete_window": int((in_pop & ~done).sum()),
                     "usable": int(usable.sum()), "bad_rate": float(label[usable].mean()) if usable.any() else np.nan})
    keep = ~np.isnan(out).all(axis=1)  # a usable label for some target
    rows.append({"target": "(no usable label: row left out)", "in_population": 0, "incomplete_window": 0,
                 "usable": int((in_any & ~keep).sum()), "bad_rate": np.nan})
    # features only for the rows that keep a label: the (features, rows) block the builder writes, no frame
    block = pair_block(prep, account[keep], day[keep], catalog)
    labels = {t: out[keep, SLOT[t]] for t in TARGET_NAMES}
    return Panel.over(block.values, block.names, block.account_id, (block.day * 86_400).view("datetime64[s]"), labels,
                      pd.DataFrame(rows), BillOutcomes(prep))
