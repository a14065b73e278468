"""What the pack reads: the reviewed rows, each with the model's probabilities and the outcome that followed.

A row is an account as of a month end of the review window, as the nightly job scored it (its score file's
row: probabilities, score, decisions, reasons), joined with its labels by the targets' one definition
(features/targets.py) computed from the data, and the Basel / IFRS 9 style variant of `default` (90+ DPD
within 12 months). A label whose performance window is not complete by the data's extraction date is left
missing, and the row counted among the exclusions, never called a good outcome.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.builders import Prepared, to_days
from features.days import NAT, calendar_months, month_end_days
from features.kernels import NONE
from features.key_lookup import value_at
from features.labels import pair_labels, window_end
from features.targets import BY_NAME, SLOT, TARGET_NAMES, LabelConfig
from models.master_scale import MASTER_SCALE, MasterScale

ON_BOOK = ["active", "new"]  # the statuses of a score file's rows that carry the models' probabilities
VARIANT = LabelConfig(default_dpd=90, default_months=12)  # the Basel / IFRS 9 style default
VARIANT_COLUMN = "y_default_90_12m"
TENURE_BANDS = (0, 6, 12, 24, 48)  # months on book: 0-5, 6-11, 12-23, 24-47, 48+
DPD_BUCKETS = (0, 1, 30, 60, 90)  # current, 1-29, 30-59, 60-89, 90+
SCORE_COLUMNS = ["account_id", "as_of", "status", "product", "pd_default", "score", "p_early_warning",
                 "early_warning", "p_self_cure", "dpd_now", "collection_treatment", "collection_intended",
                 "control_cell", "treatment_probability", "credit_limit", "new_credit_limit", "limit_action",
                 "adverse", "model_version"]
REASON_COLUMNS = ["account_id", "as_of", "adverse", *(f"reason_{i}" for i in range(1, 5)),
                  *(f"reason_text_{i}" for i in range(1, 5))]


class ReviewError(ValueError):
    """A review that cannot be made; the message says what to do."""


@dataclass
class Evidence:
    """The rows under review and what the pack needs beside them."""

    source: str  # where the predictions come from, in words
    rows: pd.DataFrame  # account_id, as_of, segments, p_<target>, y_<target>, the variant, decisions
    targets: list[str]  # the targets whose probabilities the rows carry
    labels: LabelConfig
    exclusions: pd.DataFrame  # as_of, reason, rows
    reference: dict = field(default_factory=dict)  # the bundle's training distributions (score, features)
    drift_counts: dict = field(default_factory=dict)  # as_of -> {"score" | feature: counts on the reference's bins}
    development: dict = field(default_factory=dict)  # target -> the bundle's metrics of its out-of-time slice
    scale: MasterScale = MASTER_SCALE
    features: pd.DataFrame | None = None  # a sample of rows with the model's features and benchmark predictions
    portfolio: pd.DataFrame | None = None  # every account's DPD at each month end (vintages, roll rates)
    reasons: pd.DataFrame | None = None  # the adverse decisions' reasons (from the score files)
    feature_info: pd.DataFrame | None = None  # name, source, description, fingerprint of each feature
    # the independent cohort of the per-grade tests: the accounts as of the latest month end, or (rows as of days
    # spread over the months: a training's out-of-time slice) each account's latest row
    cohort_latest_row: bool = False

    @property
    def as_of(self) -> list[pd.Timestamp]:
        """The months reviewed, as month ends."""
        return sorted(month_of(self.rows).unique())

    def scored(self, target: str) -> pd.DataFrame:
        """The rows with both the target's probability and a complete label: the columns a section reads of
        them (a wide frame of millions of rows is not copied whole)."""
        p, y = f"p_{target}", f"y_{target}"
        keep = (self.rows[p].notna() & self.rows[y].notna()).to_numpy()
        columns = [c for c in ("account_id", "as_of", "product", "tenure_band", "grace_days", "dpd_bucket", p, y,
                               VARIANT_COLUMN) if c in self.rows]
        return self.rows[columns][keep]


def score_files(folder: Path, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> list[Path]:
    """The nightly job's score files in `folder` (scores-YYYY-MM-DD.parquet), oldest first, within [start, end]."""
    out = []
    for path in sorted(Path(folder).glob("scores-*.parquet")):
        day = pd.Timestamp(path.stem.removeprefix("scores-"))
        if (start is None or day >= start) and (end is None or day <= end):
            out.append(path)
    return out


def read_scores(paths: list[Path]) -> pd.DataFrame:
    """The score files' rows of accounts on the book (the ones the models scored), the columns the pack reads
    (a file of an older schema lacks some: left null). Closed and charged-off accounts' rows carry no
    prediction to review."""
    return _read(paths, SCORE_COLUMNS, ("status", ON_BOOK))


def read_reasons(paths: list[Path]) -> pd.DataFrame:
    """The reasons of the adverse decisions only: reading every row's texts would cost gigabytes on a large
    book, and only an adverse decision carries reasons."""
    return _read(paths, REASON_COLUMNS, ("adverse", [True]))


def _read(paths: list[Path], columns: list[str], where: tuple[str, list]) -> pd.DataFrame:
    """The rows of `paths` whose column where[0] is one of where[1]. Words (a few distinct ones per column over
    millions of rows) are read as dictionaries, never as strings, and come out as categoricals whose categories
    are the sorted words of all the files."""
    tables = []
    for path in paths:
        try:
            schema = pq.read_schema(path)
            if where[0] not in schema.names:
                continue
            present = [c for c in columns if c in schema.names]
            words = [c for c in present if pa.types.is_string(schema.field(c).type)]
            table = pq.read_table(path, columns=present, read_dictionary=words)
            test = table[where[0]]
            if pa.types.is_dictionary(test.type):
                test = test.cast(test.type.value_type)
            tables.append(table.filter(pc.fill_null(pc.is_in(test, pa.array(where[1])), False)))
        except (OSError, pa.ArrowException) as exc:
            raise ReviewError(f"{path} is not a readable score file ({exc}): rewrite it with score.py --as-of "
                              f"{path.stem.removeprefix('scores-')}, or leave it out of --scores") from None
    if not tables:
        return pd.DataFrame(columns=columns).astype({"as_of": "datetime64[s]"})
    # one table, then one conversion: a pandas concat of a dozen wide frames copies column by column
    rows = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries().to_pandas()
    rows = rows.reindex(columns=columns)
    for column in rows.columns[rows.dtypes == "category"]:
        rows[column] = rows[column].cat.reorder_categories(sorted(rows[column].cat.categories))
    rows["as_of"] = pd.to_datetime(rows["as_of"])
    return rows


def complete_month_ends(first_day: pd.Timestamp, extraction: pd.Timestamp, months: int,
                        labels: LabelConfig | None = None) -> list[pd.Timestamp]:
    """The latest `months` month ends whose default window (the longest of the targets) is complete."""
    labels = labels or LabelConfig()
    last = int(to_days(np.array([pd.Timestamp(extraction).to_datetime64()]))[0])
    ends = pd.date_range(first_day, extraction, freq="ME")
    days = to_days(ends.to_numpy())
    done = window_end(days, labels.default_months) <= last
    return list(ends[done][-months:])


def with_outcomes(rows: pd.DataFrame, prep: Prepared, labels: LabelConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`rows` with y_<target> for every declared target and the variant, and the exclusions by month.

    The labels are the panel's (features/labels.py): NaN outside a target's population, and NaN (counted) where
    the performance window has not ended by the extraction date.
    """
    pos = np.searchsorted(prep.account_id, rows["account_id"].to_numpy(np.int64))
    known = (pos < len(prep.account_id)) & (prep.account_id[np.minimum(pos, len(prep.account_id) - 1)]
                                            == rows["account_id"].to_numpy(np.int64))
    if not known.all():
        bad = rows.loc[~known, "account_id"].head(3).tolist()
        raise ReviewError(f"{(~known).sum():,} scored rows name accounts the data do not hold (account_id "
                         f"{', '.join(map(str, bad))}): review the score files with the data they were scored from")
    days = to_days(rows["as_of"].to_numpy())
    out, complete = pair_labels(prep, pos, days, labels)
    new = {}
    excluded = []
    for name in TARGET_NAMES:
        y, done = out[:, SLOT[name]].copy(), complete[:, SLOT[name]]
        excluded.append(_excluded(rows, f"{name}: performance window not complete", ~np.isnan(y) & ~done))
        y[~done] = np.nan
        new[f"y_{name}"] = y
    new.update(segments(rows, prep, pos, days))
    rows, variant_excluded = variant_outcomes(rows.assign(**new), prep)
    return rows, pd.concat([*excluded, variant_excluded], ignore_index=True)


def variant_outcomes(rows: pd.DataFrame, prep: Prepared) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`rows` with the Basel / IFRS 9 style default (90+ DPD within 12 months) and the rows whose 12 months
    have not passed (left missing, counted)."""
    pos = np.searchsorted(prep.account_id, rows["account_id"].to_numpy(np.int64))
    variant, done = pair_labels(prep, pos, to_days(rows["as_of"].to_numpy()), VARIANT)
    v, v_done = variant[:, SLOT["default"]].copy(), done[:, SLOT["default"]]
    excluded = _excluded(rows, "default 90+ DPD in 12 months: window not complete", ~np.isnan(v) & ~v_done)
    v[~v_done] = np.nan
    return rows.assign(**{VARIANT_COLUMN: v}), excluded


def partition(keys) -> tuple[np.ndarray, pd.Index]:
    """Each row's group code (-1: missing) and the groups' values: in the categories' order for a categorical
    (bands read low to high), else sorted."""
    keys = keys if isinstance(keys, pd.Series) else pd.Series(keys)
    if isinstance(keys.dtype, pd.CategoricalDtype):
        return keys.cat.codes.to_numpy(np.int64), keys.cat.categories
    codes, values = pd.factorize(keys.to_numpy(), sort=True)
    return codes.astype(np.int64), pd.Index(values)


def groups(keys) -> list[tuple[object, np.ndarray]]:
    """(value, row positions) of every value of `keys` present (missing left out), in `partition`'s order: one
    stable sort, where a DataFrame groupby would copy every column of a wide frame for each group."""
    codes, values = partition(keys)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
    return [(values[k], order[bounds[k]:bounds[k + 1]]) for k in range(len(values)) if bounds[k + 1] > bounds[k]]


def month_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's as-of month, as its month end (score files are as of month ends; training rows spread)."""
    days = to_days(pd.to_datetime(rows["as_of"]).to_numpy())
    ends = month_end_days(calendar_months(np.where(days == NONE, NAT, days)))
    return pd.Series(np.where(ends == NAT, NAT, ends * 86_400).view("datetime64[s]"), index=rows.index,
                     name="as_of")


def _excluded(rows: pd.DataFrame, reason: str, mask: np.ndarray) -> pd.DataFrame:
    counts = rows.loc[mask].groupby(month_of(rows.loc[mask])).size()
    return pd.DataFrame({"as_of": counts.index, "reason": reason, "rows": counts.to_numpy()})


def segments(rows: pd.DataFrame, prep: Prepared, pos: np.ndarray, days: np.ndarray) -> dict:
    """Tenure band, grace days and DPD bucket: the segments every review splits by."""
    tenure = (days - prep.open_day[pos]) // 30.4375
    dpd = rows["dpd_now"].to_numpy(np.float64) if "dpd_now" in rows else np.full(len(rows), np.nan)
    return {"tenure_band": bands(tenure, TENURE_BANDS, "months"),
            "grace_days": prep.grace_days[pos],
            "dpd_bucket": bands(dpd, DPD_BUCKETS, "DPD", zero="current")}


def bands(values: np.ndarray, edges: tuple[int, ...], unit: str, zero: str | None = None) -> pd.Categorical:
    labels = []
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        if zero and lo == 0 and hi == 1:
            labels.append(zero)
        else:
            labels.append(f"{lo}+ {unit}" if hi is None else f"{lo}-{hi - 1} {unit}")
    codes = np.searchsorted(np.asarray(edges[1:]), values, side="right")
    codes = np.where(np.isnan(values), -1, codes)
    return pd.Categorical.from_codes(codes, categories=labels)


def with_oracle(rows: pd.DataFrame, truth: pd.DataFrame | None, targets: list[str]) -> pd.DataFrame:
    """The synthetic truth's Bayes-optimal probability beside each target's (synthetic data only)."""
    if truth is None or not len(truth):
        return rows
    return rows.assign(**{f"oracle_{t}": value_at(truth, BY_NAME[t].truth_bayes, rows) for t in targets
                          if BY_NAME[t].truth_bayes in truth})
