"""Benchmark: the whole training path against bare LightGBM on the same matrices.

Goal (issue 4, item 11), at 200,000 accounts x 36 months: the training path from panel to registered
bundle -- fits with early stopping, calibration, benchmark scorecard, metrics with bootstrap intervals,
report, mlflow run and registry -- costs at most 1.15 x three bare `lightgbm.train` calls with the same
parameters and the number of rounds the trainer chose. Timed apart: building the panel, and making a new
mlflow store's tables (once per store; the imports of mlflow and lightgbm are the process's). Also printed: the
out-of-time AUC against the Bayes-optimal oracle (goal >= 0.99 x) and the default model's calibration
deciles inside their binomial 95 % interval (goal >= 9 of 10).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np

from bench.data import dataset
from bench.measure import PeakMemory, Timer
from features.catalog import default_catalog
from features.contract import load_tables
from training.config import TrainConfig
from training.tracking import log_training
from training.trainer import build_training_panel, slice_rows, train
from validation.training_report import write_training_report

GOAL_OVERHEAD, GOAL_ORACLE, GOAL_DECILES = 1.15, 0.99, 9


def run(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, help="dataset folder (default: the cache folder)")
    ap.add_argument("--latent-state", action="store_true",
                    help="train with the latent-state filter's features ([train] latent_state = true)")
    args = ap.parse_args(argv)
    data = args.data or dataset(args.accounts, args.months, args.seed)
    cfg = TrainConfig(latent_state=args.latent_state)
    catalog = default_catalog()
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
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
                    report = write_training_report(result, tmp / "reports")
                logged = log_training(result, model_name="bench", experiment="bench",
                                      uri=uri, report_path=report, config=cfg)
        bare = {}
        panel = result.panel  # the trained-on panel: the latent-state features appended
        for target, r in result.targets.items():
            at = slice_rows(panel, target, r.plan)["train"]  # the trainer's own rows, in its order
            X, y = np.ascontiguousarray(panel.rows(at)), panel.frame[target].to_numpy(np.float64)[at]
            with Timer() as t_bare:
                lgb.train(r.params, lgb.Dataset(X, y, feature_name=panel.feature_names),
                          num_boost_round=r.best_iteration)
            bare[target] = t_bare.seconds
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bare_s = sum(bare.values())
    overhead = t_path.seconds / bare_s
    d = result.targets["default"]
    inside = int(d.calibration["inside"].sum())
    rows = {t: r.rows["train"] for t, r in result.targets.items()}
    print(f"train: {args.accounts:,} accounts x {args.months} months; panel {len(panel.frame):,} rows x "
          f"{len(panel.feature_names)} features; train rows " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    print(f"  read {t_load.seconds:.1f} s   panel {t_panel.seconds:.1f} s and new mlflow store "
          f"{t_store.seconds:.1f} s (apart)   "
          f"training path {t_path.seconds:.1f} s (fits {result.timings['fit_s']:.1f} s)   peak {mem.peak_gb:.2f} GB")
    # the latent-state filter fitted and its features added; the panel binned once; then each target's part
    stages: dict[str, float] = {"latent": result.timings.get("latent_s", 0.0), "bin": result.timings["bin_s"]}
    for r in result.targets.values():
        for stage, seconds in r.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    stages["bundle"] = t_train.seconds - result.timings["fit_s"]  # drift references, fingerprint
    stages["report"] = t_report.seconds
    stages["mlflow"] = t_path.seconds - t_train.seconds - t_report.seconds
    print("  where the path's time went: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    print("  bare lightgbm.train " + ", ".join(f"{t} {s:.1f} s ({result.targets[t].best_iteration} rounds)"
                                                for t, s in bare.items())
          + f" = {bare_s:.1f} s; overhead ratio {overhead:.2f} (goal <= {GOAL_OVERHEAD})")
    for t, r in result.targets.items():
        m = r.metrics["test"]
        line = (f"  {t:<14} out-of-time AUC {m['auc']:.4f} [{m['auc_lo']:.4f}, {m['auc_hi']:.4f}]  observed / "
                f"predicted {m['oe_ratio']:.3f}")
        if r.oracle:
            line += f"  oracle {r.oracle['oracle_auc']:.4f}  ratio {r.oracle['auc_ratio']:.4f}"
        print(line)
    print(f"  default calibration: {inside}/10 deciles inside the binomial 95 % interval (goal >= {GOAL_DECILES}); "
          f"registered {logged.model_uri} as {logged.alias}")
    figures = {"bench": "train", "accounts": args.accounts, "months": args.months, "latent_state": args.latent_state,
               "panel_rows": len(panel.frame),
               "read_s": round(t_load.seconds, 2), "panel_s": round(t_panel.seconds, 2),
               "store_s": round(t_store.seconds, 2),
               "path_s": round(t_path.seconds, 2), "bare_s": round(bare_s, 2), "overhead_ratio": round(overhead, 3),
               "peak_gb": round(mem.peak_gb, 2), "deciles_inside": inside}
    figures.update({f"{k}_s": round(v, 2) for k, v in stages.items()})
    for t, r in result.targets.items():
        figures[f"{t}_auc"] = round(r.metrics["test"]["auc"], 4)
        figures[f"{t}_rounds"] = r.best_iteration
        figures[f"{t}_oe_ratio"] = round(r.metrics["test"]["oe_ratio"], 4)
        if r.oracle:
            figures[f"{t}_oracle_ratio"] = round(r.oracle["auc_ratio"], 4)
    return figures

