"""The nightly scoring job over a whole portfolio, and its compiled trees against LightGBM's own.

Goal, at 1,000,000 accounts: python score.py end to end -- reading, features (as of T and of the previous
cycle), three models, reasons, policy and writing -- in at most 20 s wall and 4 GB peak (the process tree,
workers included). Numba compiles once per machine (cached on disk); that one-time cost is timed apart on a
small chunk. In the same run, on the same features: LightGBM's predict and exact TreeSHAP (pred_contrib)
against the job's compiled predictor and TreeSHAP -- rows/s, the ratio, and the agreement of the top-4
reason codes. The model is trained once (not timed) on a simulated world of its own (--train-accounts x
--train-months) and cached with the datasets.

Examples:
  python -m bench score                                            # the goal's size, 1,000,000 accounts
  python -m bench score --accounts 5000 --train-accounts 20000     # a small run
  python -m bench score --latent-state                             # a model with the latent-state features
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.cli import bench_parser
from bench.data import CACHE, dataset
from bench.measure import PeakMemory, Timer
from features.builders import Prepared, build_features
from features.catalog import default_catalog
from features.cli import mlflow_output, positive
from features.contract import load_tables
from features.outcomes import BillOutcomes
from models.bundle import BundleError, load_bundle
from models.latent_state import LatentStateFilter, add_latent_features
from models.reasons import top_adverse
from models.treeshap import compile_booster, contributions, predict_raw
from scoring.chunk import ChunkSpec, score_chunk
from scoring.chunks import survey
from scoring.models import Models
from scoring.output import manifest_path
from simulation.generate import code_version
from training.config import TrainConfig
from training.trainer import train

GOAL_S, GOAL_GB = 20.0, 4.0
ROOT = Path(__file__).resolve().parent.parent


def model_options(ap) -> None:
    """--train-accounts and --train-months: the world `model` trains the benchmark's bundle on."""
    ap.add_argument("--train-accounts", type=positive(), default=200_000, metavar="N",
                    help="accounts of the world the model is trained on (default 200,000)")
    ap.add_argument("--train-months", type=positive(), default=36, metavar="N",
                    help="as-of months of that world, after 36 months of history (default 36)")


def model(accounts: int, months: int, seed: int, latent_state: bool = False) -> Path:
    """A bundle trained on its own world, cached while the simulator's code is unchanged (with the latent-state
    filter's features, or without: one cached bundle of each kind)."""
    kind = "-latent" if latent_state else ""
    folder = CACHE / f"bench-model-{accounts}x{months}-s{seed}{kind}-{code_version()[:12]}"
    try:
        if (load_bundle(folder, default_catalog()).latent is not None) == latent_state:
            return folder
    except BundleError:
        pass
    print(f"training the benchmark model on {accounts:,} accounts x {months} months (not timed)", file=sys.stderr)
    data = dataset(accounts, months, seed)
    tables = load_tables(data, optional=("macro", "truth"))
    cfg = TrainConfig(n_boot=20, latent_state=latent_state)
    result = train(tables, cfg, progress=lambda _: None)
    return result.bundle.save(folder)


def run(argv: list[str]) -> dict:
    ap = bench_parser("score", __doc__, accounts=1_000_000, months=24, workers=2)
    model_options(ap)
    ap.add_argument("--chunk-size", type=positive(), default=125_000, metavar="N",
                    help="accounts per chunk of the job (default 125,000)")
    ap.add_argument("--sample", type=positive(), default=5_000, metavar="N",
                    help="adverse rows for LightGBM's pred_contrib baseline (default 5,000)")
    ap.add_argument("--latent-state", action="store_true",
                    help="score with a model trained with the latent-state filter's features (bench train "
                         "--latent-state); the job then computes them from each chunk's histories")
    args = ap.parse_args(argv)
    mlflow_output(verbose=False)  # the figures, not mlflow's INFO lines and download bars
    data = dataset(args.accounts, args.months, args.seed, history=args.history_months)
    bundle_dir = model(args.train_accounts, args.train_months, args.seed, args.latent_state)
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    try:
        portfolio = survey(data)
        as_of = int(np.datetime64(portfolio.extraction.day.date(), "D").astype(np.int64))
        with Timer() as t_compile:  # one small chunk in this process: numba's on-disk cache is filled
            from policy.config import load_policy

            small = int(portfolio.account_id[min(2_000, len(portfolio.account_id) - 1)])
            spec = ChunkSpec(as_of, as_of - 31, portfolio.first_day, portfolio.extraction,
                             Models.of(load_bundle(bundle_dir)), "bench", load_policy(), "adverse")
            score_chunk(load_tables(data, account_range=(int(portfolio.account_id[0]), small)), spec)
        out = tmp / "scores.parquet"
        command = [sys.executable, str(ROOT / "score.py"), "--model", str(bundle_dir), "--data", str(data),
                   "--out", str(out), "--workers", str(args.workers), "--chunk-size", str(args.chunk_size)]
        with Timer() as t_job:  # the job in a process of its own: its peak is the job's, workers included
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with PeakMemory(pid=proc.pid) as mem:
                _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"score.py failed (exit {proc.returncode}):\n{stderr.strip()[-3000:]}")
        manifest = json.loads(manifest_path(out).read_text())
        scored = pd.read_parquet(out, columns=["account_id", "adverse", "collection_treatment", "limit_action"])
        base = _baselines(data, bundle_dir, portfolio, scored, args.sample)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stages = manifest["timings"]["stages_worker_s"]
    rows = manifest["rows"]
    print(f"score: {rows['scored']:,} accounts as of {manifest['as_of']} ({args.accounts:,} x {args.months} months), "
          f"{args.workers} workers, {manifest['run']['chunks']} chunks; model {bundle_dir.name}")
    print(f"  wall {t_job.seconds:.1f} s for `python score.py` (goal <= {GOAL_S:.0f}; "
          f"{manifest['timings']['wall_s']:.1f} s after the interpreter's start)   "
          f"peak {mem.peak_gb:.2f} GB (goal <= {GOAL_GB:.0f})   "
          f"{rows['scored'] / t_job.seconds:,.0f} accounts/s   one-time compile {t_compile.seconds:.1f} s (apart)")
    print("  worker seconds by stage (summed over workers): " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"  adverse decisions {rows.get('adverse', 0):,} ({rows.get('adverse', 0) / rows['scored']:.1%}) get "
          f"reasons; limit actions " + ", ".join(f"{k} {v:,}" for k, v in rows["limit_action"].items()))
    print(f"  predict: compiled {base['predict_rows_s']:,.0f} rows/s vs LightGBM (1 thread) "
          f"{base['lgb_predict_rows_s']:,.0f} rows/s, ratio {base['predict_ratio']:.2f}, max |diff| "
          f"{base['predict_max_diff']:.1e}")
    print(f"  TreeSHAP: compiled {base['shap_rows_s']:,.0f} rows/s vs LightGBM pred_contrib (1 thread) "
          f"{base['lgb_shap_rows_s']:,.0f} rows/s, ratio {base['shap_ratio']:.1f}; top-4 reason codes equal on "
          f"{base['top4_agree']:.2%} of {base['shap_rows']:,} adverse rows (goal >= 99 %)")
    return {"bench": "score", "accounts": args.accounts, "scored": rows["scored"], "workers": args.workers,
            "latent_state": args.latent_state,
            "wall_s": round(t_job.seconds, 2), "job_wall_s": manifest["timings"]["wall_s"],
            "peak_gb": round(mem.peak_gb, 2),
            "compile_s": round(t_compile.seconds, 2),
            **{f"{k}_worker_s": v for k, v in stages.items()}, "adverse": rows.get("adverse", 0),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in base.items()},
            "goal_met": bool(t_job.seconds <= GOAL_S and mem.peak_gb <= GOAL_GB)}


def _baselines(data: Path, bundle_dir: Path, portfolio, scored: pd.DataFrame, sample: int) -> dict:
    """Compiled trees vs LightGBM on the first chunk's features (same rows, same process)."""
    bundle = load_bundle(bundle_dir)
    hi = int(portfolio.account_id[min(50_000, len(portfolio.account_id) - 1)])
    tables = load_tables(data, account_range=(int(portfolio.account_id[0]), hi))
    feats = build_features(tables, [portfolio.extraction.day])
    if bundle.latent:
        feats = add_latent_features(feats, BillOutcomes(Prepared(tables)), LatentStateFilter.from_dict(bundle.latent))
    X = np.ascontiguousarray(feats[bundle.feature_names].to_numpy(np.float64))
    booster = bundle.models["default"].booster
    compiled = compile_booster(booster)
    with Timer() as t_ours:
        ours = predict_raw(compiled, X)
    with Timer() as t_lgb:
        theirs = booster.predict(X, raw_score=True, num_threads=1)
    adverse = scored.set_index("account_id").reindex(feats["account_id"])
    rows = np.flatnonzero((adverse["adverse"] & (adverse["collection_treatment"] == "")).to_numpy(bool))[:sample]
    Xa = np.ascontiguousarray(X[rows])
    with Timer() as t_shap:
        mine = contributions(compiled, Xa)
    with Timer() as t_lgb_shap:
        exact = booster.predict(Xa, pred_contrib=True, num_threads=1)
    a = np.sort(top_adverse(mine[:, :-1], 4)[0], axis=1)
    b = np.sort(top_adverse(exact[:, :-1], 4)[0], axis=1)
    n = max(len(rows), 1)
    return {"predict_rows_s": len(X) / t_ours.seconds, "lgb_predict_rows_s": len(X) / t_lgb.seconds,
            "predict_ratio": t_lgb.seconds / t_ours.seconds, "predict_max_diff": float(np.abs(ours - theirs).max()),
            "shap_rows": len(rows), "shap_rows_s": n / t_shap.seconds, "lgb_shap_rows_s": n / t_lgb_shap.seconds,
            "shap_ratio": t_lgb_shap.seconds / t_shap.seconds,
            "top4_agree": float((a == b).all(axis=1).mean()) if len(rows) else 1.0,
            "shap_max_diff": float(np.abs(mine - exact).max()) if len(rows) else 0.0}
