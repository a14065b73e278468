"""What monthly data is worth: the project on a bureau-style monthly file against the model a team already has.

The monthly view of a simulated world (per account and month: status code, statement, paid amount, limit),
six reports ending at a snapshot month, the `default` outcome after it as the labels file. Every model is
judged on the same account-disjoint folds (training.snapshot), by out-of-fold AUC fold by fold:
- baseline: LightGBM with its default parameters on the raw wide columns (per month the status code as a
  category, the statement and the paid amount; the limit), early stopping on the rows the project's fit of
  the fold stops on, trained on every other row outside the held-out fold;
- the project: the monthly file adapted (features.adapters), the catalog's features, the default model
  trained by cross-validation over accounts, exactly as `train.py --labels` trains from a snapshot;
- the project with the raw columns beside its features, brought in as a team's own columns (`--extra`: status
  as months past due, a special code as a negative number);
- the day-precise path: the same accounts, labels and folds, features from the world's own day-exact
  histories: what monthly data costs.
Margins are the mean over the folds of the paired AUC differences, with a t interval across folds. Also
measured: the adapter's round trip (the view adapted and viewed again gives the view's statuses).

Goals (200,000 accounts, seed 1): the project's features beat the baseline by at least 0.005 AUC, and with the
raw columns by at least 0.01, each with its paired 95 % interval above 0; the round trip equal on every
account-month whose reported months reach back to its oldest unpaid bill.

Examples:
  python -m bench monthly                                  # the goals' size
  python -m bench monthly --accounts 20000                 # a small run
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import stats

from bench.cli import bench_parser
from bench.data import dataset
from bench.measure import Timer
from features.adapters import from_monthly
from features.builders import Prepared
from features.catalog import default_catalog
from features.cli import positive
from features.contract import load_tables
from features.extra import read_extra, taken_names
from simulation.monthly_view import latest_snapshot, monthly_view, read_back, snapshot_labels
from training.config import TrainConfig
from training.slices import calibration_half
from training.snapshot import account_folds
from training.trainer import train
from validation.metrics import auc

GOAL_FEATURES, GOAL_WITH_RAW = 0.005, 0.01


def run(argv: list[str]) -> dict:
    ap = bench_parser("monthly", __doc__, accounts=200_000, months=36)
    ap.add_argument("--reports", type=positive(), default=6, metavar="N",
                    help="monthly reports up to the snapshot (default 6)")
    ap.add_argument("--folds", type=positive(), default=5, metavar="K",
                    help="account-disjoint folds, at least 3 (default 5)")
    args = ap.parse_args(argv)
    if args.folds < 3:
        ap.error(f"--folds {args.folds}: at least 3 (one tests, one stops and calibrates, the rest train)")
    world = load_tables(dataset(args.accounts, args.months, args.seed, history=args.history_months),
                        optional=("macro", "truth"))
    prep = Prepared(world)
    snapshot = latest_snapshot(prep)
    with Timer() as t_view:
        view = monthly_view(prep, snapshot, args.reports)
        labels = snapshot_labels(prep, snapshot).rename(columns={"label": "default"})
        labels = labels[["account_id", "as_of", "default"]]
    with Timer() as t_adapt:
        adapted = from_monthly(view)
    trip = read_back(view, adapted, snapshot, args.reports)
    # the trainer's own bootstrap intervals are not read here (the margins' intervals are across folds)
    cfg = TrainConfig(targets=("default",), split="accounts", folds=args.folds, n_boot=20)
    raw = _raw_columns(view, labels["account_id"].to_numpy())
    oof, seconds = {}, {}
    for name, tables, with_raw in (("features", adapted, False), ("features + raw", adapted, True),
                                   ("day-precise", world, False)):
        with Timer() as t:
            oof[name] = _project(tables, labels, cfg, raw if with_raw else None)
        seconds[name] = t.seconds
        print(f"  {name}: trained and scored out of fold in {t.seconds:.1f} s", file=sys.stderr)
    keys = oof["features"][["account_id", "y"]]
    for frame in oof.values():  # the rows every model scored (an account may be off the book in one source)
        keys = keys.merge(frame[["account_id"]], on="account_id", validate="one_to_one")
    with Timer() as t:
        oof["baseline"] = _baseline(raw, keys, cfg)
    seconds["baseline"] = t.seconds
    fold = account_folds(keys["account_id"].to_numpy(), cfg.folds)
    aucs = {name: _fold_aucs(keys, frame, fold, cfg.folds) for name, frame in oof.items()}
    figures = _figures(args, view, labels, trip, aucs, seconds, t_view.seconds, t_adapt.seconds)
    figures["compared"] = len(keys)
    _print(figures, aucs)
    return figures


def _raw_columns(view: pd.DataFrame, accounts: np.ndarray) -> pd.DataFrame:
    """The wide file a team has, one row per labelled account (indexed by account_id): status_k, bill_k, paid_k for
    k = 0 (the snapshot month) .. n - 1 months before, and the latest limit. Status stays a code (text)."""
    rows = view.assign(k=view.groupby("account_id").cumcount(ascending=False))
    wide = rows.pivot(index="account_id", columns="k", values=["status", "bill_amount", "paid_amount"])
    wide.columns = [f"{dict(status='status', bill_amount='bill', paid_amount='paid')[a]}_{k}" for a, k in wide.columns]
    wide["limit"] = rows.groupby("account_id")["credit_limit"].last()
    wide = wide.reindex(accounts)
    for c in wide:
        wide[c] = wide[c].astype(object) if c.startswith("status") else wide[c].astype(np.float64)
    return wide


def _as_numbers(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw columns as numbers for the project's model: a status as its months past due, a special code as a
    negative number of its own (codes in sorted order), missing where the account was not reported."""
    out = raw.copy()
    for c in [c for c in raw if c.startswith("status")]:
        text = raw[c].astype("string")
        digits = text.str.isdigit().fillna(False).astype(bool)
        number = pd.to_numeric(text.where(digits), errors="coerce")
        special = sorted(set(text[~digits].dropna()))
        code = text.map({s: -1.0 - i for i, s in enumerate(special)})
        out[c] = number.fillna(code).astype(np.float64)
    return out.rename(columns=lambda c: f"raw_{c}")


def _project(tables, labels: pd.DataFrame, cfg: TrainConfig, raw: pd.DataFrame | None) -> pd.DataFrame:
    """The default model trained by cross-validation over accounts, as `train.py --labels` trains it (and with
    `--extra` for the raw columns, written to a file and read back as a team's own columns would be): its
    out-of-fold rows (account_id, y, p)."""
    extra = None
    if raw is not None:
        with tempfile.TemporaryDirectory(prefix="bench-monthly-") as tmp:
            path = Path(tmp) / "raw.parquet"
            _as_numbers(raw).reset_index().to_parquet(path, index=False)
            extra = read_extra(path, taken_names(default_catalog()))
    result = train(tables, cfg, labels=labels, extra=extra, progress=lambda _: None)
    return result.targets["default"].predictions[["account_id", "y", "p"]]


def _baseline(raw: pd.DataFrame, keys: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """LightGBM's defaults on the raw columns, fold by fold: early stopping on the half of fold k + 1 the
    project's fit stops on, every other row outside fold k trains. Rows in the order of `keys`."""
    account = keys["account_id"].to_numpy()
    X = raw.loc[account].reset_index(drop=True)
    for c in [c for c in X if c.startswith("status")]:
        X[c] = pd.Categorical(X[c], categories=sorted(set(raw[c].dropna())))
    y = keys["y"].to_numpy()
    fold, half = account_folds(account, cfg.folds), calibration_half(account)
    p = np.full(len(y), np.nan)
    params = {"objective": "binary", "seed": cfg.seed, "deterministic": True, "verbosity": -1}
    for k in range(cfg.folds):
        stop = (fold == (k + 1) % cfg.folds) & ~half
        fit = (fold != k) & ~stop
        train_set = lgb.Dataset(X[fit], y[fit], params={"verbosity": -1})
        valid_set = lgb.Dataset(X[stop], y[stop], reference=train_set)
        booster = lgb.train(params, train_set, 5_000, valid_sets=[valid_set],
                            callbacks=[lgb.early_stopping(50, verbose=False)])
        p[fold == k] = booster.predict(X[fold == k], num_iteration=booster.best_iteration)
    return pd.DataFrame({"account_id": account, "y": y, "p": p})


def _fold_aucs(keys: pd.DataFrame, frame: pd.DataFrame, fold: np.ndarray, folds: int) -> np.ndarray:
    """The model's AUC on each held-out fold, on the rows of `keys` (every model's rows joined on account)."""
    p = keys[["account_id"]].merge(frame[["account_id", "p"]], on="account_id", how="left", validate="one_to_one")
    y, p = keys["y"].to_numpy(), p["p"].to_numpy()
    return np.array([auc(y[fold == k], p[fold == k]) for k in range(folds)])


def margin(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """The mean paired difference a - b over folds and its t interval across them."""
    d = a - b
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def _figures(args, view, labels, trip, aucs, seconds, view_s, adapt_s) -> dict:
    out = {"bench": "monthly", "accounts": args.accounts, "seed": args.seed, "reports": args.reports,
           "folds": args.folds, "view_rows": len(view), "labelled": len(labels),
           "bad_rate": round(float(labels["default"].mean()), 5), "view_s": round(view_s, 2),
           "adapt_s": round(adapt_s, 2), **{f"round_trip_{k}": v for k, v in trip.items()}}
    for name, a in aucs.items():
        out[f"auc_{_key(name)}"] = round(float(a.mean()), 5)
        out[f"seconds_{_key(name)}"] = round(seconds[name], 1)
    for name, goal in (("features", GOAL_FEATURES), ("features + raw", GOAL_WITH_RAW)):
        m, lo, hi = margin(aucs[name], aucs["baseline"])
        key = _key(name)
        out.update({f"margin_{key}": round(m, 5), f"margin_{key}_lo": round(lo, 5), f"margin_{key}_hi": round(hi, 5),
                    f"goal_{key}_met": bool(m >= goal and lo > 0)})
    m, lo, hi = margin(aucs["day-precise"], aucs["features"])
    out.update({"day_precise_gap": round(m, 5), "day_precise_gap_lo": round(lo, 5), "day_precise_gap_hi": round(hi, 5)})
    return out


def _key(name: str) -> str:
    return name.replace(" + ", "_").replace("-", "_")


def _print(f: dict, aucs: dict) -> None:
    print(f"monthly: {f['accounts']:,} accounts (seed {f['seed']}), {f['reports']} reports to the snapshot, "
          f"{f['view_rows']:,} rows; {f['labelled']:,} labelled, bad rate {f['bad_rate']:.2%}; {f['folds']} folds "
          f"over the {f['compared']:,} accounts every model scored")
    print(f"  round trip: statuses equal on {f['round_trip_equal_share']:.2%} of account-months "
          f"({f['round_trip_explained_equal_share']:.2%} of the {f['round_trip_explained']:,} whose months reach back "
          f"to the oldest unpaid bill; {f['round_trip_more']} read back higher)")
    print("  out-of-fold AUC by fold             mean    " + "  ".join(f"fold {k}" for k in range(f["folds"])))
    for name, a in aucs.items():
        print(f"  {name:<34} {a.mean():.4f}  " + "  ".join(f"{v:.4f}" for v in a))
    for name, goal in (("features", GOAL_FEATURES), ("features + raw", GOAL_WITH_RAW)):
        key = _key(name)
        met = "met" if f[f"goal_{key}_met"] else "NOT met"
        print(f"  {name} - baseline: {f[f'margin_{key}']:+.4f} [{f[f'margin_{key}_lo']:+.4f}, "
              f"{f[f'margin_{key}_hi']:+.4f}]  goal >= {goal} with the interval above 0: {met}")
    print(f"  day-precise - monthly features: {f['day_precise_gap']:+.4f} [{f['day_precise_gap_lo']:+.4f}, "
          f"{f['day_precise_gap_hi']:+.4f}]: what monthly data costs")
