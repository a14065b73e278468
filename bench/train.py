"""The whole training path, from panel to registered model, against bare LightGBM fits on the same rows, and
the models against the Bayes-optimal oracle.

Goals, on a living book of 200,000 accounts (36 months of history, 36 as-of months, seed 1):
- cost: the LightGBM fits at most 1.10 x bare lightgbm.train calls on the same rows, parameters and rounds,
  the training path (fits with early stopping, calibration, benchmark scorecard, metrics, report, mlflow
  run and registry) at most 1.5 x those bare fits, peak at most 16 GB. Timed apart: reading, building the
  panel, making a new mlflow store's tables.
- ranking, on the out-of-time month-end rows (where the truth lives): default's AUC at least 0.99 x the
  oracle's, early warning's and self-cure's at least 0.98 x, with the paired, account-clustered bootstrap
  95 % interval of the ratio.
- calibration, judged the way the oracle is judged on the same rows: default and early warning have at
  least 9 of 10 deciles inside their account-clustered 95 % intervals (or as many as the oracle), and the
  overall observed / predicted inside its own 95 % interval and within 0.97-1.03.

Examples:
  python -m bench train                                   # the goals' size
  python -m bench train --accounts 20000                  # a small run
  python -m bench train --latent-state                    # with the latent-state filter's features
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import lightgbm as lgb
import mlflow
import numpy as np

from bench.cli import bench_parser
from bench.data import dataset
from bench.measure import PeakMemory, Timer
from features.catalog import default_catalog
from features.cli import mlflow_output
from features.contract import load_tables
from review.training import write_training_pack
from training.config import TrainConfig
from training.tracking import log_training
from training.trainer import build_training_panel, slice_rows, train
from validation.metrics import bootstrap_auc_ratio_ci, calibration_table, observed_over_predicted

GOAL_FITS, GOAL_PATH, GOAL_GB = 1.10, 1.5, 16.0
GOAL_ORACLE = {"default": 0.99, "early_warning": 0.98, "self_cure": 0.98}
GOAL_DECILES, GOAL_OE = 9, (0.97, 1.03)
CALIBRATED = ("default", "early_warning")


def run(argv: list[str]) -> dict:
    ap = bench_parser("train", __doc__, accounts=200_000, months=36, data=True)
    ap.add_argument("--latent-state", action="store_true",
                    help="train with the latent-state filter's features ([train] latent_state = true)")
    args = ap.parse_args(argv)
    mlflow_output(verbose=False)  # the figures, not mlflow's INFO lines and download bars
    data = args.data or dataset(args.accounts, args.months, args.seed, history=args.history_months)
    cfg = TrainConfig(latent_state=args.latent_state)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        m = _training_path(data, cfg, tmp)
        m.bare = _bare_fits(m.result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    m.stages = _stages(m)
    m.goals = _against_the_oracle(m.result)
    _print(m, args)
    return _figures(m, args)


def _training_path(data: Path, cfg: TrainConfig, tmp: Path) -> SimpleNamespace:
    """Read, build the panel, then the timed path: train, report, log and register in a new mlflow store."""
    catalog = default_catalog()
    uri = f"sqlite:///{tmp}/mlflow.db"
    with PeakMemory() as mem:
        with Timer() as t_store:  # a new store's tables: made once per store, not once per training run
            mlflow.MlflowClient(tracking_uri=uri).search_experiments()
        with Timer() as t_load:
            tables = load_tables(data, optional=("macro", "truth"))
        with Timer() as t_panel:
            panel = build_training_panel(tables, cfg, catalog)
        with Timer() as t_path:
            with Timer() as t_train:
                result = train(tables, cfg, panel=panel, catalog=catalog, progress=lambda _: None)
            with Timer() as t_report:
                report = write_training_pack(result, tables, tmp / "reports")
            logged = log_training(result, model_name="bench", experiment="bench",
                                  uri=uri, report_path=report, config=cfg)
    return SimpleNamespace(result=result, logged=logged, peak_gb=mem.peak_gb, store_s=t_store.seconds,
                           load_s=t_load.seconds, panel_s=t_panel.seconds, path_s=t_path.seconds,
                           train_s=t_train.seconds, report_s=t_report.seconds)


def _bare_fits(result) -> dict[str, float]:
    """Seconds of a bare lightgbm.train per target: the trainer's rows, parameters and number of rounds."""
    bare = {}
    panel = result.panel  # the trained-on panel: the latent-state features appended
    for target, r in result.targets.items():
        at = slice_rows(panel, target, r.plan)["train"]  # the trainer's own rows, in its order
        X, y = np.ascontiguousarray(panel.rows(at)), panel.frame[target].to_numpy(np.float64)[at]
        with Timer() as t_bare:
            lgb.train(r.params, lgb.Dataset(X, y, feature_name=panel.feature_names),
                      num_boost_round=r.best_iteration)
        bare[target] = t_bare.seconds
    return bare


def _against_the_oracle(result) -> dict[str, dict]:
    """Per target, on the out-of-time month-end rows where the truth lives: the AUC ratio to the oracle with
    its paired, account-clustered bootstrap interval; for default and early warning the calibration test
    (deciles inside their account-clustered 95 % intervals, observed / predicted inside its own), the
    oracle's probabilities going through the same test as the control."""
    out = {}
    for target, r in result.targets.items():
        if not r.oracle:
            continue
        rows = r.predictions  # the out-of-time rows, the oracle's probability where the truth lives
        y, p, q, acc = (rows[c].to_numpy() for c in ("y", "p", "oracle_p", "account_id"))
        ok = np.isfinite(q)
        y, p, q, acc = y[ok], p[ok], q[ok], acc[ok]
        g = {"ratio": r.oracle["auc_ratio"], "rows": int(ok.sum()),
             "ratio_ci": bootstrap_auc_ratio_ci(y, p, q, groups=acc, n_boot=200, seed=0)}
        if target in CALIBRATED:
            for who, probs in (("model", p), ("oracle", q)):
                table = calibration_table(y, probs, method="clustered", groups=acc)
                g[f"{who}_deciles"] = int(table["inside"].sum())
                g[f"{who}_oe"] = observed_over_predicted(y, probs, groups=acc)
        out[target] = g
    return out


def _stages(m: SimpleNamespace) -> dict[str, float]:
    """Where the path's time went: the latent-state filter fitted and its features added; the panel binned
    once; then each target's part; the bundle, the report and mlflow."""
    result = m.result
    stages: dict[str, float] = {"latent": result.timings.get("latent_s", 0.0), "bin": result.timings["bin_s"]}
    for r in result.targets.values():
        for stage, seconds in r.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    stages["bundle"] = m.train_s - result.timings["fit_s"]  # drift references, fingerprint
    stages["report"] = m.report_s
    stages["mlflow"] = m.path_s - m.train_s - m.report_s
    return stages


def _print(m: SimpleNamespace, args) -> None:
    result, panel = m.result, m.result.panel
    bare_s = sum(m.bare.values())
    rows = {t: r.rows["train"] for t, r in result.targets.items()}
    print(f"train: {args.accounts:,} accounts x {args.months} months; panel {len(panel.frame):,} rows x "
          f"{len(panel.feature_names)} features; train rows " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    print(f"  read {m.load_s:.1f} s   panel {m.panel_s:.1f} s and new mlflow store "
          f"{m.store_s:.1f} s (apart)   "
          f"training path {m.path_s:.1f} s (fits {result.timings['fit_s']:.1f} s)   peak {m.peak_gb:.2f} GB")
    print("  where the path's time went: " + ", ".join(f"{k} {v:.1f} s" for k, v in m.stages.items()))
    print("  bare lightgbm.train " + ", ".join(f"{t} {s:.1f} s ({result.targets[t].best_iteration} rounds)"
                                                for t, s in m.bare.items())
          + f" = {bare_s:.1f} s")
    for t, r in result.targets.items():
        test = r.metrics["test"]
        line = (f"  {t:<14} out-of-time AUC {test['auc']:.4f} [{test['auc_lo']:.4f}, {test['auc_hi']:.4f}]  "
                f"observed / predicted {test['oe_ratio']:.3f}")
        if r.oracle:
            line += (f"  oracle {r.oracle['oracle_auc']:.4f}  ratio {r.oracle['auc_ratio']:.4f} "
                     f"(on the {r.oracle['rows']:,} month-end rows)")
        print(line)
    for t, g in m.goals.items():
        lo, hi = g["ratio_ci"]
        line = (f"  {t:<14} AUC / oracle {g['ratio']:.4f} [{lo:.4f}, {hi:.4f}] (goal >= {GOAL_ORACLE[t]}, "
                f"{g['rows']:,} month-end rows)")
        if t in CALIBRATED:
            oe = g["model_oe"]
            line += (f"; deciles inside {g['model_deciles']}/10 (oracle {g['oracle_deciles']}/10, goal >= "
                     f"{min(GOAL_DECILES, g['oracle_deciles'])}); observed / predicted {oe['ratio']:.3f}, "
                     f"interval [{oe['lo']:.3f}, {oe['hi']:.3f}] (oracle {g['oracle_oe']['ratio']:.3f})")
        print(line)
    fits = result.timings["fit_s"]
    print(f"  cost: fits {fits / bare_s:.2f} x bare (goal <= {GOAL_FITS}), path {m.path_s / bare_s:.2f} x bare "
          f"(goal <= {GOAL_PATH}), peak {m.peak_gb:.1f} GB (goal <= {GOAL_GB:.0f}); "
          f"registered {m.logged.model_uri} as {m.logged.alias}")


def _figures(m: SimpleNamespace, args) -> dict:
    """The run's one line of JSON."""
    result = m.result
    bare_s = sum(m.bare.values())
    figures = {"bench": "train", "accounts": args.accounts, "months": args.months, "latent_state": args.latent_state,
               "panel_rows": len(result.panel.frame),
               "read_s": round(m.load_s, 2), "panel_s": round(m.panel_s, 2),
               "store_s": round(m.store_s, 2),
               "path_s": round(m.path_s, 2), "bare_s": round(bare_s, 2), "overhead_ratio": round(m.path_s / bare_s, 3),
               "fits_ratio": round(result.timings["fit_s"] / bare_s, 3), "peak_gb": round(m.peak_gb, 2)}
    figures.update({f"{k}_s": round(v, 2) for k, v in m.stages.items()})
    for t, r in result.targets.items():
        figures[f"{t}_auc"] = round(r.metrics["test"]["auc"], 4)
        figures[f"{t}_rounds"] = r.best_iteration
        figures[f"{t}_oe_ratio"] = round(r.metrics["test"]["oe_ratio"], 4)
    for t, g in m.goals.items():
        figures[f"{t}_oracle_ratio"] = round(g["ratio"], 4)
        figures[f"{t}_oracle_ratio_ci"] = [round(x, 4) for x in g["ratio_ci"]]
        if t in CALIBRATED:
            figures[f"{t}_deciles_inside"] = g["model_deciles"]
            figures[f"{t}_oracle_deciles_inside"] = g["oracle_deciles"]
            figures[f"{t}_oe"] = round(g["model_oe"]["ratio"], 4)
            figures[f"{t}_oe_inside"] = g["model_oe"]["inside"]
            figures[f"{t}_oracle_oe"] = round(g["oracle_oe"]["ratio"], 4)
    return figures
