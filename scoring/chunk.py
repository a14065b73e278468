"""One chunk scored from tables already in memory: the pure map step of the nightly job.

`score_chunk` reads no file and writes none. It takes the chunk's tables (whole customers, in the contract)
and what every chunk shares (`ChunkSpec`), and returns the chunk's output table with the counts the job adds
up across chunks: drift histograms (and the economy's extremes), decision tallies and the input statistics
that whole-extract checks reduce. The local engine (scoring/job.py) calls it in worker processes; any other
engine that can hand it a chunk's rows (Spark's grouped map, an incremental daily update) calls the same
function.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa

from features.builders import FeatureBlock, Prepared, build_block, to_days
from features.catalog import default_catalog
from features.contract import Problem, Tables
from features.extra import ExtraColumns, missing
from features.extraction import Extraction
from features.outcomes import BillOutcomes
from features.stopwatch import Stopwatch
from features.targets import BY_NAME, TARGETS
from models.latent_state import add_latent_features
from models.reasons import describe, eligible, top_adverse
from models.treeshap import contributions
from policy.config import Policy
from policy.decide import ACTIVE, CHARGED_OFF, CLOSED, NEW, decide
from policy.decide import INPUTS as POLICY_INPUTS
from scoring.models import Models
from scoring.output import REASONS, SCHEMA, SCHEMA_VERSION, TARGET_COLUMNS
from scoring.tally import Tally
from validation.metrics import bin_counts

STAGES = ("read", "features", "predict", "policy", "reasons", "assemble")
KEYED_TABLES = ("accounts", "bills", "payments", "limits")


@dataclass(frozen=True)
class ChunkSpec:
    """What every chunk of one run shares: the date, the models, the policy and how to explain."""

    as_of: int  # day number
    previous_day: int | None  # recompute the previous score as of this day (None: given, or none)
    first_day: pd.Timestamp  # the whole extract's, not the chunk's: an as-of date is judged against the data
    extraction: Extraction  # the whole extract's: each chunk's rows are checked against it
    models: Models
    model_version: str
    policy: Policy
    reasons: str


@dataclass
class InputStats:
    """Per table: rows and the account-id range seen, added up over chunks for whole-extract checks."""

    rows: dict[str, int] = field(default_factory=dict)
    account_min: dict[str, int] = field(default_factory=dict)
    account_max: dict[str, int] = field(default_factory=dict)
    bill_ranges: list[tuple[int, int]] = field(default_factory=list)  # (min, max) bill_id of each chunk

    @classmethod
    def of(cls, tables: Tables) -> InputStats:
        stats = cls()
        for name in KEYED_TABLES:
            ids = getattr(tables, name)["account_id"].to_numpy(np.int64)
            stats.rows[name] = len(ids)
            if len(ids):
                stats.account_min[name], stats.account_max[name] = int(ids.min()), int(ids.max())
        bill_id = tables.bills["bill_id"].to_numpy(np.int64)
        if len(bill_id):
            stats.bill_ranges.append((int(bill_id.min()), int(bill_id.max())))
        return stats

    def summary(self) -> dict:
        """Plain JSON for the manifest: rows and account-id range of every table read."""
        return {name: {"rows": n, "account_id_min": self.account_min.get(name),
                       "account_id_max": self.account_max.get(name)} for name, n in self.rows.items()}

    def merge(self, other: InputStats) -> None:
        for name, n in other.rows.items():
            self.rows[name] = self.rows.get(name, 0) + n
        for name, lo in other.account_min.items():
            self.account_min[name] = min(self.account_min.get(name, lo), lo)
        for name, hi in other.account_max.items():
            self.account_max[name] = max(self.account_max.get(name, hi), hi)
        self.bill_ranges += other.bill_ranges

    def bill_ids_may_repeat(self) -> bool:
        """Whether two chunks' bill-id ranges overlap: only then can a bill_id repeat across chunks (each
        chunk's own are checked as it is read)."""
        ranges = sorted(self.bill_ranges)
        return any(b[0] <= a[1] for a, b in pairwise(ranges))


@dataclass
class ChunkOutput:
    table: pa.Table | None  # None when the chunk's rows break the contract (see problems)
    drift: dict[str, np.ndarray]
    tally: Tally | None
    inputs: InputStats
    seconds: dict[str, float]
    accounts: int  # accounts in the chunk, open or not
    problems: tuple[Problem, ...] = ()  # what the chunk's rows break, counted in the chunk
    # [lowest, highest] on the book of each feature the reference records a training range for (the economy:
    # one value per date), NaN when missing on every row; the job keeps the extremes over chunks
    extremes: dict[str, np.ndarray] = field(default_factory=dict)
    # output rows whose extra columns are missing, by why (features.extra.missing); empty without extra columns
    extra_missing: dict[str, int] = field(default_factory=dict)

    @classmethod
    def refused(cls, problems: tuple[Problem, ...], seconds: dict[str, float]) -> ChunkOutput:
        """A chunk not scored: its rows break the contract; the job adds the problems up over all chunks."""
        return cls(None, {}, None, InputStats(), seconds, 0, problems)


def score_chunk(tables: Tables, spec: ChunkSpec, previous: tuple[np.ndarray, np.ndarray] | None = None, *,
                extra: ExtraColumns | None = None, watch: Stopwatch | None = None) -> ChunkOutput:
    """Features, probabilities, decisions and reasons for every account of `tables` open at spec.as_of.

    previous: (sorted account ids, scores) of the last cycle's output, when given instead of recomputed.
    extra: the rows of these accounts of the extra columns the models read (features.extra), when they read any.
    watch: a stopwatch already running (the caller timed its reading as stage 'read').
    """
    watch = watch or Stopwatch(STAGES)
    models = spec.models
    prep, now, before, lacking = _features(tables, spec, extra)
    watch.lap("features")
    X = now.matrix(models.feature_names)  # (rows x features) in the bundle's own order
    on_book = _on_book(prep, now.account_id, spec.as_of)
    status = _status(prep, now, spec.as_of, on_book)
    prob = models.predict_populations(X, now.column("dpd_now"), on_book)
    model_score = models.scale.score(prob["default"])[0]
    prior = _previous_scores(spec, prep, now.account_id, before, previous)
    watch.lap("predict")
    state = _state(now, status, prob, model_score, prior)
    fired: dict[str, np.ndarray] = {}  # where each rule fired, for the run's counts
    decision = decide(state, spec.policy, score_lo=models.scale.lo, score_hi=models.scale.hi, fired=fired)
    watch.lap("policy")
    codes, texts = _reasons(decision, models, X, spec.reasons)
    watch.lap("reasons")
    table = _table(spec, state, prob, decision, codes, texts)
    # drift is measured on the book: a charged-off or closed account has no score, and its features describe a
    # debt in recovery or a line that is gone, not the population the models were trained on
    book = np.flatnonzero(on_book)
    references = {name: ref for name, ref in models.reference.get("features", {}).items() if name in now.names}
    drift = {name: bin_counts(ref, pd.Series(now.column(name)[book], copy=False)) for name, ref in references.items()}
    if "score" in models.reference:
        drift["score"] = bin_counts(models.reference["score"], pd.Series(model_score[~np.isnan(model_score)]))
    extremes = {name: _extremes(now.column(name)[book]) for name, ref in references.items() if "range" in ref}
    tally = Tally(spec.policy)
    tally.add(table, state["balance_now"].to_numpy(np.float64), fired)
    watch.lap("assemble")
    return ChunkOutput(table, drift, tally, InputStats.of(tables), dict(watch.seconds), len(prep.account_id),
                       extremes=extremes, extra_missing=lacking)


def _extremes(values: np.ndarray) -> np.ndarray:
    """[lowest, highest] of the non-missing values, NaN for both when there are none."""
    seen = values[~np.isnan(values)]
    return np.array([seen.min(), seen.max()]) if len(seen) else np.full(2, np.nan)


def _features(tables: Tables, spec: ChunkSpec, extra: ExtraColumns | None = None
              ) -> tuple[Prepared, FeatureBlock, FeatureBlock | None, dict[str, int]]:
    """Features as of T and (when recomputing) as of the previous cycle, in one pass over the histories, with the
    extra columns as known on each day; and how many rows as of T have no extra value, by why."""
    prep = Prepared(tables)
    prep.extraction, prep.first_day = spec.extraction.day, int(to_days(np.array([spec.first_day.to_datetime64()]))[0])
    days = [spec.as_of] if spec.previous_day is None else [spec.previous_day, spec.as_of]
    block = build_block(prep, [np.datetime64(int(d), "D") for d in days], default_catalog())
    if spec.models.latent is not None:  # the filter's features join the catalog's (its reader takes a frame)
        frame = add_latent_features(block.frame(), BillOutcomes(prep), spec.models.latent)
        names = list(frame.columns[2:])
        block = FeatureBlock(names, np.ascontiguousarray(frame[names].to_numpy(np.float64).T), block.account_id,
                             block.day)
    block, lacking = _with_extra(block, spec, extra)
    before = block.on(spec.previous_day) if spec.previous_day is not None else None
    return prep, block.on(spec.as_of), before, lacking


def _with_extra(block: FeatureBlock, spec: ChunkSpec, extra: ExtraColumns | None) -> tuple[FeatureBlock, dict]:
    """The block with the extra columns the models read after its features, each row's as known on its day, and
    the rows as of T left without a value, by why (none when the models read no extra column)."""
    wanted = spec.models.extra["columns"] if spec.models.extra else []
    if not wanted:
        return block, {}
    if extra is None or not set(wanted) <= set(extra.names):
        raise ValueError(f"the model reads the extra columns {', '.join(wanted)}: pass them (--extra FILE)")
    values, status = extra.select(wanted).at(block.account_id, block.day)
    joined = FeatureBlock([*block.names, *wanted], np.ascontiguousarray(np.concatenate([block.values, values.T])),
                          block.account_id, block.day)
    return joined, missing(status[block.day == spec.as_of])


def _on_book(prep: Prepared, account_id: np.ndarray, day: int) -> np.ndarray:
    """Whether each account is on the book at the end of `day` (Prepared.on_book)."""
    return prep.on_book(day)[np.searchsorted(prep.account_id, account_id)]


def _status(prep: Prepared, now: FeatureBlock, as_of: int, on_book: np.ndarray) -> np.ndarray:
    """charged_off, closed, new (no bill due yet) or active, per row of `now` (open accounts, `on_book` or
    not). An account off the book is closed unless it was charged off, closed or not: its debt is in recovery."""
    charged = prep.charge_off_day[np.searchsorted(prep.account_id, now.account_id)] <= as_of
    return np.select([charged, ~on_book, now.column("bills_due") == 0], [CHARGED_OFF, CLOSED, NEW], ACTIVE)


def _previous_scores(spec: ChunkSpec, prep: Prepared, ids: np.ndarray, before: FeatureBlock | None,
                     given: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Last cycle's score per account (NaN where there is none): recomputed, or from the given output."""
    previous = np.full(len(ids), np.nan)
    if before is not None and len(before):
        models = spec.models
        known = before.account_id
        X = before.matrix(models.feature_names)
        on_book = _on_book(prep, known, spec.previous_day)
        pd_default = models.in_population("default", X, before.column("dpd_now"), on_book)
        scores = models.scale.score(pd_default)[0]
    elif given is not None and len(given[0]):
        known, scores = given
    else:
        return previous
    pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    hit = known[pos] == ids
    previous[hit] = scores[pos[hit]]
    return previous


# how the job supplies each input the policy declares (policy.decide.INPUTS): a feature column, or what
# the chunk computed (status, predictions, previous score). A policy input missing here fails a test.
FROM_FEATURES = {"account_id": "account_id", "dpd_now": "dpd_now", "days_since_late": "days_since_late",
                 "utilisation": "util_n3", "balance_now": "balance_now", "limit_now": "limit_now"}
COMPUTED = ("status", "is_installment", "model_score", "previous_score", *(t.output for t in TARGETS))


def _state(now: FeatureBlock, status: np.ndarray, prob: dict, model_score: np.ndarray,
           previous: np.ndarray) -> pd.DataFrame:
    """What the policy decides on: exactly the inputs it declares (a model the bundle lacks is left out)."""
    computed = {"status": status, "is_installment": now.column("is_installment") == 1,
                "model_score": model_score, "previous_score": previous,
                **{BY_NAME[t].output: p for t, p in prob.items()}}
    columns = {}
    for name in POLICY_INPUTS:
        if name == "account_id":
            columns[name] = now.account_id
        elif name in FROM_FEATURES:
            columns[name] = now.column(FROM_FEATURES[name])
        elif name in computed:
            columns[name] = computed[name]
    return pd.DataFrame(columns)


DECISIONS = ("score", "score_adjustment", "early_warning", "early_warning_action", "collection_treatment",
             "collection_intended", "control_cell", "treatment_probability", "new_credit_limit", "limit_action",
             "adverse")


def _table(spec: ChunkSpec, state: pd.DataFrame, prob: dict, decision: pd.DataFrame, codes: np.ndarray,
           texts: np.ndarray) -> pa.Table:
    """The chunk's rows in the output schema (the columns of a target the bundle lacks are null)."""
    n = len(state)
    out = {
        "account_id": state["account_id"].to_numpy(), "as_of": np.full(n, spec.as_of, dtype="datetime64[D]"),
        "status": state["status"].to_numpy(),
        "product": np.where(state["is_installment"], "installment", "revolving"),
        **{BY_NAME[t].output: p for t, p in prob.items()},
        "model_score": state["model_score"].to_numpy(), "previous_score": state["previous_score"].to_numpy(),
        # a charged-off account's record is its status: no score and no days past due (its debt is in recovery);
        # a closed one keeps its days past due, for its unpaid last bill is still collected
        "dpd_now": np.where(state["status"].to_numpy() == CHARGED_OFF, np.nan, state["dpd_now"].to_numpy()),
        "credit_limit": state["limit_now"].to_numpy(),
        **{c: decision[c].to_numpy() for c in DECISIONS},
        **{f"reason_{i + 1}": codes[:, i] for i in range(REASONS)},
        **{f"reason_text_{i + 1}": texts[:, i] for i in range(REASONS)},
        "model_version": np.full(n, spec.model_version, dtype=object),
        "schema_version": np.full(n, SCHEMA_VERSION, dtype=np.int32),
    }
    for target, columns in TARGET_COLUMNS.items():  # a model the bundle lacks: its columns are there, null
        if target not in spec.models.targets:
            out.update({c: np.full(n, None, dtype=object) for c in columns})
    # NaN is written as null: a value nothing computed (outside a population, no previous score) is missing
    return pa.table({f.name: pa.array(out[f.name], type=f.type, from_pandas=True) for f in SCHEMA}, schema=SCHEMA)


def _reasons(decision: pd.DataFrame, models: Models, X: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Reason columns: the fired rule first, then the explaining model's TreeSHAP reasons, up to REASONS.

    Only rows that need them are explained ('adverse': rows with an adverse decision; 'all': every row,
    by the default model unless the self-cure model explains an adverse collection decision).
    """
    n = len(decision)
    rule = decision["rule_code"].to_numpy(object)
    has_rule = rule != ""
    explain = decision["explain"].to_numpy(object).copy()
    if mode == "all":
        explain[explain == ""] = "default"
    elif mode == "none":
        explain[:] = ""
    model_idx = np.full((n, REASONS), -1, dtype=np.int64)
    for target in ("default", "self_cure"):  # adverse: raises PD, or lowers the chance of self-cure
        sign = float(BY_NAME[target].direction)
        rows = np.flatnonzero(explain == target)
        if len(rows) and target in models.compiled:
            values = np.ascontiguousarray(X[rows])
            contrib = contributions(models.compiled[target], values)[:, :-1]
            allowed = eligible(values, models.feature_names, models.catalog)  # the catalog's NotAReason left out
            top = top_adverse(sign * contrib, REASONS, allowed)[0]  # fewer columns for a model of fewer features
            model_idx[rows, :top.shape[1]] = top
    codes, texts = describe(model_idx, X, models.feature_names, models.catalog)
    # rows with a rule: rule in slot 1, model reasons shifted right by one
    codes[has_rule, 1:] = codes[has_rule, :-1]
    texts[has_rule, 1:] = texts[has_rule, :-1]
    codes[has_rule, 0] = rule[has_rule]
    texts[has_rule, 0] = decision["rule_text"].to_numpy(object)[has_rule]
    return codes, texts
