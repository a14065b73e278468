"""Training: from repayment histories to a validated, calibrated model bundle.

For each target: the panel's rows with a usable label, split in time (train | valid | test with embargoes;
calib is an account-disjoint half of the validation months unless it has months of its own), LightGBM with
the catalog's monotone constraints and early stopping on `valid`, a calibrator chosen on `calib`, metrics
on every slice (account-level bootstrap intervals on the out-of-time test), the benchmark scorecard on the
same slices, and -- on synthetic data -- the gap to the Bayes-optimal oracle.
training/job.py adds the report and tracking (mlflow) around this; nothing here needs a tracking server.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.as_of import check_as_of
from features.builders import Prepared, pair_block, requested, to_days
from features.catalog import Catalog, default_catalog
from features.contract import Tables
from features.extra import ExtraColumns, join_panel, with_extra
from features.extract_manifest import stated_as_of_from
from features.key_lookup import value_at
from features.outcomes import BillOutcomes
from features.panel import Panel, build_panel
from features.stopwatch import Stopwatch
from features.targets import TARGET_NAMES
from features.targets import target as declared
from models.bundle import Bundle, TargetModel
from models.calibration import fit_calibrator
from models.latent_state import LatentStateFilter, with_latent
from models.lgbm import check_classes, fit_datasets, lgb_params, panel_dataset, sample_rows, subset
from models.treeshap import compile_booster, predict_probability
from training.config import TrainConfig
from training.slices import SLICES, SlicePlan, TooFewMonthsError, plan_slices
from training.snapshot import SnapshotPlan

SAMPLE_ROWS = 200_000  # training-slice rows for in-sample metrics and the benchmark scorecard
Plan = SlicePlan | SnapshotPlan


@dataclass
class TargetResult:
    target: str
    plan: SlicePlan | SnapshotPlan
    rows: dict[str, int]
    metrics: dict[str, dict]  # slice -> metric set
    scorecard: dict[str, dict]
    calibration: pd.DataFrame
    oracle: dict
    predictions: pd.DataFrame  # test slice: account_id, as_of, y, p, scorecard_p (and oracle p)
    fit_seconds: float
    best_iteration: int
    params: dict
    scorecard_model: object = None
    test_features: pd.DataFrame | None = None  # account_id, as_of and the features of the out-of-time rows
    stage_seconds: dict[str, float] = field(default_factory=dict)  # where the time went: bin, fit, score, ...
    # predicted vs observed rate per slice and as-of month (calibration_by_period; training rows: in-sample)
    by_month: pd.DataFrame | None = None
    in_sample_p: np.ndarray | None = None  # calibrated probabilities of the seeded training sample (metrics' rows)


@dataclass
class TrainResult:
    bundle: Bundle
    targets: dict[str, TargetResult]
    panel_counts: pd.DataFrame
    timings: dict[str, float]
    fingerprint: str
    panel: Panel | None = None  # what the models were trained on (with the latent-state features, if any)


def fingerprint(tables: Tables) -> str:
    """A short hash of the inputs' shapes and sums: two runs on the same data share it."""
    import hashlib

    h = hashlib.sha256()
    for name in ("accounts", "bills", "payments", "limits"):
        frame = getattr(tables, name)
        h.update(f"{name}:{len(frame)}".encode())
        for col in frame.columns:
            values = frame[col]
            if values.dtype.kind in "biuf":
                h.update(f"{col}:{float(np.nansum(values.to_numpy(np.float64))):.6f}".encode())
            elif values.dtype.kind == "M":
                h.update(f"{col}:{values.min()}:{values.max()}".encode())
    return h.hexdigest()[:16]


def supplied_labels(path: Path) -> pd.DataFrame:
    """Labels brought from outside the histories: columns account_id, as_of, target, label (0/1)."""
    path = Path(path)
    try:
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the labels file ({exc})") from None
    need = ["account_id", "as_of", "target", "label"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: the labels file lacks column(s) {', '.join(missing)}; it needs {', '.join(need)}")
    bad_target = ~raw["target"].isin(TARGET_NAMES)
    if bad_target.any():
        rows = raw.index[bad_target][:3].tolist()
        raise ValueError(f"{path}: target has unknown values in {int(bad_target.sum())} rows (rows {rows}, e.g. "
                         f"{raw.loc[bad_target, 'target'].iloc[0]!r}); use {', '.join(TARGET_NAMES)}")
    bad_label = ~raw["label"].isin([0, 1, 0.0, 1.0, True, False])
    if bad_label.any():
        rows = raw.index[bad_label][:3].tolist()
        raise ValueError(f"{path}: label must be 0 or 1; {int(bad_label.sum())} rows are not (rows {rows})")
    out = raw[need].copy()
    out["as_of"] = pd.to_datetime(out["as_of"]).astype("datetime64[s]")
    out["label"] = out["label"].astype(float)
    return out.pivot_table(index=["account_id", "as_of"], columns="target", values="label", aggfunc="max").reset_index()


def _month_range(prep: Prepared, cfg: TrainConfig, stated: pd.Timestamp | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The as-of range of the tables (see `as_of_range`)."""
    first_due = int(prep.due_day.min()) if len(prep.due_day) else prep.first_day  # first bill, not oldest account
    return as_of_range(first_due, prep.extraction, cfg, stated)


def as_of_range(first_due: int, extraction: pd.Timestamp | None, cfg: TrainConfig,
                stated: pd.Timestamp | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The as-of range: the config's, else from the first as-of day the extract states (`as_of_from` in its
    manifest: a warehouse's earlier months are history, whose rows would see shorter records), else from 3
    months into the data (`first_due`: the whole extract's first due day, the Spark panel reads it from the
    footers)."""
    first = pd.Timestamp(np.datetime64(first_due, "D"))
    start = pd.Timestamp(cfg.as_of_start) if cfg.as_of_start else stated if stated is not None else \
        first + pd.offsets.MonthEnd(3)
    end = pd.Timestamp(cfg.as_of_end) if cfg.as_of_end else extraction
    if start > end:
        raise ValueError(f"the as-of range is empty: start {start:%Y-%m-%d} is after end {end:%Y-%m-%d}")
    if cfg.as_of_end and extraction is not None:  # name the date the user gave
        check_as_of(to_days(np.array([end.to_datetime64()])), None,
                    int(to_days(np.array([extraction.to_datetime64()]))[0]), what="as-of end")
    return start, end


def build_training_panel(tables: Tables, cfg: TrainConfig, catalog: Catalog, labels: pd.DataFrame | None = None,
                         extra: ExtraColumns | None = None) -> Panel:
    """The catalog's features and the labels (supplied, else derived); `extra`: columns from outside the
    histories, joined after the features as known at each row's as-of day (features.extra)."""
    prep = Prepared(tables)
    if labels is not None:
        panel = supplied_panel(prep, cfg, catalog, labels)
    else:
        start, end = _month_range(prep, cfg, stated_as_of_from(tables))
        panel = build_panel(prep, start, end, catalog, cfg.labels, month_end_share=cfg.month_end_share, seed=cfg.seed)
    return panel if extra is None else join_panel(panel, extra)


def supplied_panel(prep: Prepared, cfg: TrainConfig, catalog: Catalog, labels: pd.DataFrame) -> Panel:
    """The features of exactly the labelled (account, as-of) pairs, day by day in account order (the panel's
    order). A file's labels are the outcome: its rows are not held to the derived labels' windows nor to month
    ends. Rows outside the config's as-of range, or of an account that had left the book by then (closed,
    charged off), are left out and counted; unknown accounts, days the data cannot answer and days before an
    account opened are refused by name."""
    days = to_days(labels["as_of"].to_numpy())
    inside = np.ones(len(labels), bool)
    if cfg.as_of_start:
        inside &= days >= to_days(np.array([np.datetime64(cfg.as_of_start, "D")]))[0]
    if cfg.as_of_end:
        inside &= days <= to_days(np.array([np.datetime64(cfg.as_of_end, "D")]))[0]
    if not inside.any():
        raise ValueError(f"none of the {len(labels):,} labelled rows is inside the as-of range of the config "
                         f"({cfg.as_of_start or 'the start'} .. {cfg.as_of_end or 'the end'}): widen it")
    labels, days = labels[inside].reset_index(drop=True), days[inside]
    pos, days = requested(prep, labels)
    on = prep.exit_day[pos] > days  # opened by then: `requested` refuses a row before its account opened
    if not on.any():
        raise ValueError(f"none of the {len(labels):,} labelled accounts is on the book on its as-of day (each had "
                         "closed or been charged off by then): label accounts as of days they were open")
    order = np.flatnonzero(on)[np.lexsort((pos[on], days[on]))]
    block = pair_block(prep, pos[order], days[order], catalog)
    given = {t: labels[t].to_numpy(np.float64)[order] if t in labels else np.full(len(order), np.nan)
             for t in TARGET_NAMES}
    counts = pd.DataFrame([*({"target": t, "usable": int(np.isfinite(v).sum())} for t, v in given.items()),
                           {"target": "(outside the as-of range: row left out)", "usable": int((~inside).sum())},
                           {"target": "(account not on the book that day: row left out)", "usable": int((~on).sum())}])
    return Panel.over(block.values, block.names, block.account_id, (block.day * 86_400).view("datetime64[s]"), given,
                      counts, BillOutcomes(prep))


def target_plan(panel: Panel, target: str, cfg: TrainConfig, supplied: bool,
                labelled: np.ndarray | None = None) -> Plan:
    """How the target's rows are held out, from the months of its labelled rows: slices in time when they are
    enough for them (or the config asks), else cross-validation over accounts, with why."""
    if labelled is None:
        labelled = np.flatnonzero(panel.frame[target].notna().to_numpy())
    if not len(labelled):
        raise ValueError(f"the panel has no usable rows for target {target!r}: widen the as-of range")
    months = np.unique(panel.month[labelled])
    if cfg.split == "accounts":
        return SnapshotPlan(pd.Timestamp(months[0]), pd.Timestamp(months[-1]), cfg.folds,
                            'the config asks for it ([train] split = "accounts")')
    try:
        return plan_slices(months, cfg.embargo(target, supplied), cfg.valid_months, cfg.calib_months,
                           cfg.test_months)
    except TooFewMonthsError as exc:
        if cfg.split == "time":
            raise
        return SnapshotPlan(pd.Timestamp(months[0]), pd.Timestamp(months[-1]), cfg.folds, exc.shortfall)


def target_slices(panel: Panel, target: str, cfg: TrainConfig, supplied: bool) -> tuple[Plan, dict]:
    """The target's slice plan and each slice's panel rows (see `slice_rows`)."""
    labelled = np.flatnonzero(panel.frame[target].notna().to_numpy())
    plan = target_plan(panel, target, cfg, supplied, labelled)
    return plan, slice_rows(panel, target, plan, labelled)


def train_target(panel: Panel, target: str, cfg: TrainConfig, catalog: Catalog, *, supplied: bool,
                 truth: pd.DataFrame | None = None, progress: Callable[[str], None] = print,
                 on_trial: Callable | None = None, slices: tuple[SlicePlan, dict] | None = None,
                 binned: lgb.Dataset | None = None) -> tuple[TargetModel, TargetResult]:
    """One target's model and evidence (`slices`: its plan and rows, `binned`: the panel binned on training
    rows, when the caller has them)."""
    from models.scorecard import BenchmarkScorecard
    from validation.metrics import calibration_by_period, calibration_table, metric_set

    lap = Stopwatch()
    plan, at = slices or target_slices(panel, target, cfg, supplied)
    names = panel.feature_names
    label = panel.frame[target].to_numpy(np.float64)
    y = {s: label[at[s]] for s in SLICES}
    progress(f"  {target}: {plan.describe()}; rows " + ", ".join(f"{s} {len(y[s]):,}" for s in SLICES))
    sign = declared(target).direction  # a good outcome's model runs against the features' risk directions
    monotone = [sign * catalog[n].risk for n in names]
    check_classes(y["train"], y["valid"])
    data_params = lgb_params(monotone, cfg.seed, cfg.lgb_params)
    if binned is None:
        binned = panel_dataset(panel, at["train"], data_params, cfg.seed)
    train_set, valid_set = (subset(binned, at[s], y[s], data_params) for s in ("train", "valid"))
    lap("bin")
    overrides = _tuned(target, (train_set, valid_set), monotone, cfg, progress, on_trial)
    if cfg.tune_trials or cfg.tune_timeout:
        lap("tune")
    params = lgb_params(monotone, cfg.seed, overrides, train_rows=len(y["train"]))
    fit = fit_datasets(train_set, valid_set, params, cfg.num_boost_round, cfg.early_stopping)
    fit_s = lap("fit")
    del train_set, valid_set
    # the validation, calibration and out-of-time rows are scored whole, the training rows (only described:
    # in-sample) by a seeded sample, all where they lie in the panel (no copy)
    rows = {"train": sample_rows(at["train"], SAMPLE_ROWS, cfg.seed), "valid": at["valid"], "calib": at["calib"],
            "test": at["test"]}
    y_eval = {**y, "train": label[rows["train"]]}
    cross = isinstance(plan, SnapshotPlan)  # 'test' is scored out of fold, not by this model
    trees = compile_booster(fit.booster, max_k=0)
    raw = {s: predict_probability(trees, panel.matrix, params["num_threads"], r) for s, r in rows.items()
           if not (cross and s == "test")}
    lap("score")
    calibrator = fit_calibrator(raw["calib"], y["calib"], cfg.seed)
    p = {s: calibrator.transform(raw[s]) for s in raw}
    lap("calibrate")
    card_monotone = dict(zip(names, monotone, strict=True))
    if cross:
        p["test"], card_test, rounds = _out_of_fold(panel, plan, binned, label, rows["test"], monotone=monotone,
                                                    card_monotone=card_monotone, cfg=cfg, overrides=overrides,
                                                    data_params=data_params)
        progress(f"  {target}: {plan.folds} fits out of fold ({', '.join(map(str, rounds))} rounds)")
        lap("cross-validation")
    keys = panel.frame[["account_id", "as_of"]]
    test_keys = keys.iloc[at["test"]].reset_index(drop=True)
    groups = test_keys["account_id"].to_numpy()
    metrics = {s: metric_set(y_eval[s], p[s], groups if s == "test" else None, n_boot=cfg.n_boot) for s in SLICES}
    by_month = pd.concat([calibration_by_period(y_eval[s], p[s], panel.month[rows[s]]) for s in SLICES], keys=SLICES,
                         names=["slice", None]).reset_index(0).reset_index(drop=True)
    by_month = by_month.rename(columns={"period": "as_of"})
    lap("metrics")
    frames = {s: pd.DataFrame(panel.rows(rows[s]), columns=names, copy=False) for s in ("train", "test")}
    card = BenchmarkScorecard(monotone=card_monotone).fit(frames["train"], y_eval["train"])
    card_p = {s: card.predict_proba(frames[s])[:, 1] for s in ("train", "test") if not (cross and s == "test")}
    if cross:
        card_p["test"] = card_test
    scorecard = {s: metric_set(y_eval[s], card_p[s], groups if s == "test" else None, n_boot=cfg.n_boot)
                 for s in card_p}
    lap("scorecard")
    test = test_keys.assign(y=y["test"], p=p["test"], scorecard_p=card_p["test"])
    oracle = _oracle(test, target, truth) if truth is not None else {}
    if oracle:
        test = oracle.pop("_rows")
    lap("oracle")
    numbers = {s: {k: v for k, v in m.items() if isinstance(v, int | float)} for s, m in metrics.items()}
    model = TargetModel.from_booster(target, fit.booster, calibrator, fit.best_iteration, numbers)
    model.scorecard = card.to_dict()
    result = TargetResult(target, plan, {s: len(y[s]) for s in SLICES}, metrics, scorecard,
                          calibration_table(y["test"], p["test"]), oracle, test, fit_s, fit.best_iteration, params,
                          card, pd.concat([test_keys, frames["test"]], axis=1), lap.seconds,
                          by_month, p["train"])
    return model, result


def _tuned(target: str, sets: tuple[lgb.Dataset, lgb.Dataset], monotone: list[int], cfg: TrainConfig,
           progress: Callable[[str], None], on_trial: Callable | None) -> dict:
    """The LightGBM overrides of the fit: the config's, tuned on the validation slice when the config asks."""
    if not (cfg.tune_trials or cfg.tune_timeout):
        return dict(cfg.lgb_params)
    from training.tuning import tune

    progress(f"  {target}: tuning on the validation slice ({cfg.tune_trials or 'time-boxed'} trials)")
    return tune(*sets, monotone, cfg.seed, n_trials=cfg.tune_trials, timeout=cfg.tune_timeout,
                base=dict(cfg.lgb_params), num_boost_round=cfg.num_boost_round, early_stopping=cfg.early_stopping,
                on_trial=(lambda n, p, loss, it: on_trial(target, n, p, loss, it)) if on_trial else None)


def _out_of_fold(panel: Panel, plan: SnapshotPlan, binned: lgb.Dataset, label: np.ndarray, rows: np.ndarray, *,
                 monotone: list[int], card_monotone: dict, cfg: TrainConfig, overrides: dict,
                 data_params: dict) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every labelled row's calibrated probability and benchmark-scorecard probability from the fit that held its
    fold out (training.snapshot), in the order of `rows`, and each fit's rounds."""
    from models.scorecard import BenchmarkScorecard

    account = panel.frame["account_id"].to_numpy()[rows]
    p, card_p, rounds = np.empty(len(rows)), np.empty(len(rows)), []
    for k in range(plan.folds):
        at = plan.fit_rows(k, np.arange(len(rows)), account)
        y = {s: label[rows[at[s]]] for s in at}
        check_classes(y["train"], y["valid"])
        train_set, valid_set = (subset(binned, rows[at[s]], y[s], data_params) for s in ("train", "valid"))
        params = lgb_params(monotone, cfg.seed, overrides, train_rows=len(at["train"]))
        fit = fit_datasets(train_set, valid_set, params, cfg.num_boost_round, cfg.early_stopping)
        del train_set, valid_set
        trees = compile_booster(fit.booster, max_k=0)
        raw = {s: predict_probability(trees, panel.matrix, params["num_threads"], rows[at[s]])
               for s in ("calib", "test")}
        p[at["test"]] = fit_calibrator(raw["calib"], y["calib"], cfg.seed).transform(raw["test"])
        sample = sample_rows(rows[at["train"]], SAMPLE_ROWS, cfg.seed)
        card = BenchmarkScorecard(monotone=card_monotone).fit(
            pd.DataFrame(panel.rows(sample), columns=panel.feature_names, copy=False), label[sample])
        card_p[at["test"]] = card.predict_proba(pd.DataFrame(panel.rows(rows[at["test"]]), columns=panel.feature_names,
                                                             copy=False))[:, 1]
        rounds.append(fit.best_iteration)
    return p, card_p, rounds


def shared_training_end(panel: Panel, cfg: TrainConfig, supplied: bool, slices: dict) -> pd.Timestamp:
    """The earliest training end among every declared target the panel labels, whichever are trained: bin
    edges and the latent-state filter are found on the panel's rows up to it, so no target's later slices
    shape them and a target's model is the same bytes whatever targets are trained beside it."""
    ends = []
    for name in TARGET_NAMES:
        if name in slices:
            ends.append(slices[name][0].months["train"][1])
            continue
        with suppress(ValueError):  # too few labelled months for this target: it cannot be trained here anyway
            ends.append(target_plan(panel, name, cfg, supplied).months["train"][1])
    return min(ends)


def _rows_until(panel: Panel, end: pd.Timestamp) -> np.ndarray:
    """The panel's rows in months up to `end` (every row there has a usable label for some target)."""
    return np.flatnonzero(panel.month <= end.to_datetime64())


def slice_rows(panel: Panel, target: str, plan: Plan, labelled: np.ndarray | None = None) -> dict:
    """Each slice's row positions in the panel, in panel order (rows without a label for `target` in none).
    Over accounts, 'test' is every labelled row: each is scored out of fold."""
    if labelled is None:
        labelled = np.flatnonzero(panel.frame[target].notna().to_numpy())
    part = plan.assign(pd.Series(panel.month[labelled]), panel.frame["account_id"].to_numpy()[labelled]).to_numpy()
    rows = {s: labelled[part == s] for s in SLICES}
    if isinstance(plan, SnapshotPlan):
        rows["test"] = labelled
    return rows


def _oracle(test: pd.DataFrame, target: str, truth: pd.DataFrame) -> dict:
    """The Bayes-optimal probability on the same out-of-time rows, and the model's ratio to it."""
    from validation.metrics import auc, log_loss

    col = declared(target).truth_bayes
    if col not in truth:
        return {}
    rows = test.assign(**{col: value_at(truth, col, test)})
    ok = rows[col].notna().to_numpy()
    if ok.sum() < 50 or len(np.unique(rows.loc[ok, "y"])) < 2:
        return {}
    y, p, q = rows.loc[ok, "y"].to_numpy(), rows.loc[ok, "p"].to_numpy(), rows.loc[ok, col].to_numpy()
    out = {"rows": int(ok.sum()), "model_auc": auc(y, p), "oracle_auc": auc(y, q), "model_log_loss": log_loss(y, p),
           "oracle_log_loss": log_loss(y, q)}
    out["auc_ratio"] = out["model_auc"] / out["oracle_auc"]
    out["log_loss_ratio"] = out["model_log_loss"] / out["oracle_log_loss"]
    out["_rows"] = rows.rename(columns={col: "oracle_p"})
    return out


def train(tables: Tables, cfg: TrainConfig, *, labels: pd.DataFrame | None = None, catalog: Catalog | None = None,
          progress: Callable[[str], None] = print, on_trial: Callable | None = None,
          panel: Panel | None = None, extra: ExtraColumns | None = None,
          data_fingerprint: str | None = None) -> TrainResult:
    """Build the panel (unless given), train every configured target, and return the bundle and its evidence.
    `extra`: columns from outside the histories the models read too (a given panel must hold them already).
    `tables` may be None with a given panel (read from a panel folder): `data_fingerprint` then names the data."""
    from validation.metrics import reference_distribution

    catalog = catalog or default_catalog()
    timings = {}
    t0 = time.perf_counter()
    panel = panel if panel is not None else build_training_panel(tables, cfg, catalog, labels, extra)
    catalog = with_extra(catalog, extra)
    timings["panel_s"] = time.perf_counter() - t0
    progress(f"panel: {len(panel.frame):,} rows x {len(panel.feature_names)} features "
             f"({timings['panel_s']:.1f} s)")
    truth = tables.truth if labels is None and tables is not None else None
    models, results = {}, {}
    t1 = time.perf_counter()
    slices = {t: target_slices(panel, t, cfg, labels is not None) for t in cfg.targets}
    shared_end = shared_training_end(panel, cfg, labels is not None, slices)
    latent = None
    if cfg.latent_state and panel.history is not None:
        t2 = time.perf_counter()
        latent, panel = _with_latent_state(panel, shared_end, cfg.seed, progress)
        catalog = with_latent(catalog, latent)
        timings["latent_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    shared_rows = _rows_until(panel, shared_end)
    left_out = uninformative(panel, shared_rows)
    if left_out:
        panel = panel.without(list(left_out))
        progress(f"features left out, {len(left_out)} that cannot split the training rows (the bundle's info lists "
                 "them): " + "; ".join(f"{len(n)} {why} ({_some(n)})" for why, n in _by_reason(left_out)))
    binned = panel_dataset(panel, shared_rows, lgb_params([0] * len(panel.feature_names), cfg.seed, cfg.lgb_params),
                           cfg.seed)
    timings["bin_s"] = time.perf_counter() - t3
    for target in cfg.targets:
        t_target = time.perf_counter()
        models[target], results[target] = train_target(panel, target, cfg, catalog, supplied=labels is not None,
                                                       truth=truth, progress=progress, on_trial=on_trial,
                                                       slices=slices[target], binned=binned)
        progress(f"  {target}: fitted ({results[target].best_iteration} rounds) and evaluated in "
                 f"{time.perf_counter() - t_target:.1f} s")
    del binned
    timings["fit_s"] = time.perf_counter() - t1
    # drift references: the features on a seeded sample of the rows the bin edges came from (whatever targets
    # are trained), the score on the default model's in-sample rows, as its metrics scored them; and for the
    # features judged by their range (the economy: one value per date), the range over all of those rows
    train_X = panel.rows(sample_rows(shared_rows, SAMPLE_ROWS, cfg.seed))
    reference = {"features": {n: reference_distribution(train_X[:, j]) for j, n in enumerate(panel.feature_names)}}
    del train_X
    reference["features"].update(_training_ranges(panel, shared_rows, catalog, reference["features"]))
    if "default" in results:
        reference["score"] = reference_distribution(cfg.scale.score(results["default"].in_sample_p)[0])
    fp = fingerprint(tables) if tables is not None else data_fingerprint
    info = {"data_fingerprint": fp, "label_source": "file" if labels is not None else "derived",
            "label_config": cfg.labels.__dict__, "slices": {t: r.plan.describe() for t, r in results.items()},
            "seed": cfg.seed, "left_out": left_out}
    own = set(latent.get_feature_names_out()) if latent is not None else set()
    own |= set(extra.names) if extra is not None else set()
    fingerprints = {n: fp for n, fp in catalog.fingerprints().items() if n in panel.feature_names and n not in own}
    extra = None if extra is None else extra.select(n for n in extra.names if n in panel.feature_names)
    bundle = Bundle(models, panel.feature_names, catalog.version, cfg.scale, reference, info,
                    latent.to_dict() if latent is not None else None, fingerprints,
                    extra=extra.describe() if extra is not None and extra.names else None)
    timings["total_s"] = time.perf_counter() - t0
    return TrainResult(bundle, results, panel.counts, timings, fp, panel)


def uninformative(panel: Panel, rows: np.ndarray) -> dict[str, str]:
    """The features no tree can split on the training `rows`, with why: empty (missing on every row) or constant
    (one value, never missing; a value missing on some rows is information). A monthly source leaves the
    day-exact features empty, and a short record makes some counts constant: the model and its drift checks
    should not carry them. Found on a sample, confirmed on every row."""
    sample = sample_rows(rows, SAMPLE_ROWS, 0)
    out = {}
    for j, name in enumerate(panel.feature_names):
        for where in (sample, rows):
            v = panel.values[j, where]
            missing = np.isnan(v)
            if missing.all():
                why = "empty"
            elif not missing.any() and v.min() == v.max():
                why = f"always {v[0]:g}"
            else:
                break
        else:
            out[name] = why
    return out


def _by_reason(left_out: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Left-out features grouped by why, in catalog order: ("empty", [...]), ("always 0", [...]), ..."""
    groups: dict[str, list[str]] = {}
    for name, why in left_out.items():
        groups.setdefault(why, []).append(name)
    return list(groups.items())


def _some(names: list[str], most: int = 4) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _training_ranges(panel: Panel, rows: np.ndarray, catalog: Catalog, references: dict) -> dict:
    """The references of the features the catalog judges by their range (`Feature.judged_by_range`), each
    with the range it took over the training rows: scoring holds tonight's value against it. A feature always
    missing in training gets none (its drift is judged as one value per date)."""
    from validation.metrics import training_range

    judged = {f.name for f in catalog if f.judged_by_range}
    out = {}
    for j, name in enumerate(panel.feature_names):
        if name in judged and (seen := training_range(panel.values[j, rows])) is not None:
            out[name] = {**references[name], "range": seen}
    return out


def _with_latent_state(panel: Panel, end: pd.Timestamp, seed: int,
                       progress: Callable[[str], None]) -> tuple[LatentStateFilter, Panel]:
    """The latent-state filter fitted on the outcomes known at the shared training end (so no later slice
    shapes it), and the panel with its features: each row's from what was known at the row's as-of date."""
    day = int(np.datetime64(end.date(), "D").astype(np.int64))
    latent = LatentStateFilter(random_state=seed).fit(panel.history, day)
    progress(f"latent-state filter: {latent.n_classes} habits x {latent.n_states} states, fitted on outcomes known "
             f"at {end:%Y-%m-%d} ({latent.n_iter_} EM rounds)")
    block = latent.transform(panel.history, panel.frame["account_id"].to_numpy(), panel.frame["as_of"].to_numpy())
    return latent, panel.extended(list(latent.get_feature_names_out()), block)
