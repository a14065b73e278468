"""The modelling panel: features and labels for monthly as-of dates, with honest bookkeeping.

Each row is (account, month end T): the catalog's features as of T and each target's label from after T.
A target's label is kept only where the account is in that target's population and its performance
window ended by the data's extraction date; rows with no usable label at all are left out, and both
counts are reported, so nobody mistakes an unfinished window for a good outcome.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.builders import Prepared, build_features
from features.catalog import Catalog
from features.labels import build_labels
from features.outcomes import BillOutcomes
from features.targets import TARGET_NAMES, LabelConfig


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


def _label_rows(feats: pd.DataFrame, labels: pd.DataFrame, account_ids: np.ndarray) -> np.ndarray:
    """The row of each label row among the feature rows. Both list (as-of date, account) pairs date by date in
    the accounts' order, and every labelled account is open (so has features): one sorted search on an
    integer key (day, account position)."""
    if not (np.diff(account_ids) > 0).all():
        raise ValueError("accounts must be sorted by account_id (validate() sorts them)")

    def key(frame: pd.DataFrame) -> np.ndarray:
        day = frame["as_of"].to_numpy().astype("datetime64[D]").astype(np.int64)
        return day * len(account_ids) + np.searchsorted(account_ids, frame["account_id"].to_numpy())

    wanted, have = key(labels), key(feats)
    rows = np.minimum(np.searchsorted(have, wanted), max(len(have) - 1, 0))
    if len(wanted) and (not len(have) or not np.array_equal(have[rows], wanted)):
        raise AssertionError("a labelled (account, as-of date) has no feature row: features and labels disagree "
                             "on who is open")
    return rows


def month_ends(start, end) -> list[pd.Timestamp]:
    return list(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="ME"))


def build_panel(tables, start, end, catalog: Catalog | None = None, config: LabelConfig | None = None) -> Panel:
    """Features and labels at every month end in [start, end]."""
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    dates = month_ends(start, end)
    if not dates:
        raise ValueError(f"no month end between {start} and {end}: widen the as-of range")
    feats = build_features(prep, dates, catalog)
    labels = build_labels(prep, dates, config)
    rows = []
    for t in TARGET_NAMES:
        in_pop = labels[t].notna()
        done = labels[f"complete_{t}"].to_numpy()
        labels[t] = labels[t].where(done)
        usable = labels[t].notna()
        rows.append({"target": t, "in_population": int(in_pop.sum()), "incomplete_window": int((in_pop & ~done).sum()),
                     "usable": int(usable.sum()), "bad_rate": float(labels.loc[usable, t].mean()) if usable.any()
                     else np.nan})
    keep = labels[list(TARGET_NAMES)].notna().any(axis=1).to_numpy()
    rows.append({"target": "(no usable label: row left out)", "in_population": 0, "incomplete_window": 0,
                 "usable": int((~keep).sum()), "bad_rate": np.nan})
    labels = labels.loc[keep].reset_index(drop=True)
    # one gather of the feature rows that keep a label, in the features' order: a hash merge of millions of
    # rows and the copies around it used to take twice the panel's memory again
    at = _label_rows(feats, labels, prep.account_id)
    names = [c for c in feats.columns if c not in ("account_id", "as_of")]
    values = np.take(feats[names].to_numpy(np.float64).T, at, axis=1)  # the builder's (features, rows) block
    account_id, as_of = feats["account_id"].to_numpy()[at], feats["as_of"].to_numpy()[at]
    del feats
    return Panel.over(values, names, account_id, as_of, {t: labels[t].to_numpy() for t in TARGET_NAMES},
                      pd.DataFrame(rows), BillOutcomes(prep))
