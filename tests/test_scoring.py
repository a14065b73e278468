"""The batch scoring job: same output whatever the chunking, atomic under SIGKILL, clear on bad input."""
from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.builders import Prepared, build_features
from features.catalog import default_catalog
from features.contract import load_tables
from features.outcomes import BillOutcomes
from features.targets import BY_NAME
from models.bundle import load_bundle
from models.latent_state import LatentStateFilter, add_latent_features, with_latent
from models.reasons import eligible, top_adverse
from policy.config import load_policy
from policy.decide import control_cell
from scoring.chunks import plan_chunks
from scoring.drift import drift_summary, log_drift
from scoring.job import ScoreError, ScoreRequest, run
from scoring.output import manifest_path, sha256
from simulation.generate import Request, generate
from validation.metrics import bin_counts, psi, reference_distribution, training_range

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2025-06-30"
OFF_BOOK = ("charged_off", "closed")  # the statuses of accounts no model scores


@pytest.fixture(scope="module")
def bundle_dir(trained, tmp_path_factory):
    # with the latent-state filter: scoring computes its features from the histories (the off path is the
    # default one, run by the README's main job and the score benchmark)
    return trained.bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "small"
    generate(out, Request(4_000, 30, seed=11), progress=False)
    return out


def _score(data, out, bundle, **kw) -> dict:
    return run(ScoreRequest(Path(data), Path(out), model=str(bundle), **kw))


def test_output_is_the_same_for_any_chunk_size_and_number_of_workers(baseline_dir, bundle_dir, tmp_path):
    one = _score(baseline_dir[0], tmp_path / "one.parquet", bundle_dir, workers=1, chunk_size=1_000_000)
    many = _score(baseline_dir[0], tmp_path / "many.parquet", bundle_dir, workers=1, chunk_size=3_333)
    two = _score(baseline_dir[0], tmp_path / "two.parquet", bundle_dir, workers=2, chunk_size=7_000)
    assert one["run"]["chunks"] == 1 and many["run"]["chunks"] >= 9 and two["run"]["chunks"] >= 4
    a = pq.read_table(tmp_path / "one.parquet")
    for other in ("many", "two"):
        assert pq.read_table(tmp_path / f"{other}.parquet").equals(a), other
    assert one["drift"] == many["drift"] == two["drift"]
    assert one["rows"] == many["rows"] == two["rows"]
    assert one["distributions"] == many["distributions"] == two["distributions"]
    frame = a.to_pandas()
    assert frame["account_id"].is_monotonic_increasing and frame["account_id"].is_unique
    assert len(frame) == one["rows"]["scored"] > 25_000


def test_the_job_reads_and_compiles_a_bundle_without_lightgbm(bundle_dir):
    """LightGBM (with scikit-learn and SciPy) took the parent over a second to import: the job reads the text."""
    code = ("import sys; from scoring.job import _bundle, ScoreRequest; from scoring.models import Models; "
            f"b, _ = _bundle(ScoreRequest('.', model={str(bundle_dir)!r}), '.'); Models.of(b); "
            "print(sorted(m for m in ('lightgbm', 'sklearn', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_scores_equal_lightgbm_and_reasons_equal_exact_treeshap(baseline_dir, baseline_tables, bundle_dir, tmp_path):
    manifest = _score(baseline_dir[0], tmp_path / "s.parquet", bundle_dir, workers=1, as_of=AS_OF)
    out = pd.read_parquet(tmp_path / "s.parquet")
    bundle = load_bundle(bundle_dir)
    latent = LatentStateFilter.from_dict(bundle.latent)
    feats = build_features(baseline_tables, [AS_OF], default_catalog())
    feats = add_latent_features(feats, BillOutcomes(Prepared(baseline_tables)), latent)
    assert (feats["account_id"].to_numpy() == out["account_id"].to_numpy()).all()
    expected = bundle.predict(feats)  # LightGBM's own predict, through the bundle
    # each probability within its target's scoring population, null outside it
    on_book = ~out["status"].isin(OFF_BOOK).to_numpy()
    for name in ("default", "early_warning", "self_cure"):
        inside = BY_NAME[name].scored_on.mask(out["dpd_now"].to_numpy(), on_book)
        column = BY_NAME[name].output
        assert inside.sum() > 0 and (name == "self_cure") == (inside.sum() < 0.2 * len(out))
        np.testing.assert_allclose(out.loc[inside, column], expected.loc[inside, column], rtol=0, atol=1e-12)
        assert out.loc[~inside, column].isna().all()
    assert (out.loc[on_book, "model_score"] == expected.loc[on_book, "score"]).all()
    assert out.loc[~on_book, ["model_score", "score"]].isna().all().all() and (~on_book).any()
    # the model reasons of adverse rows: the same codes, in the same order, as LightGBM's exact TreeSHAP, among
    # the features the catalog lets be a reason (models/reasons.py)
    adverse = out["adverse"].to_numpy() & (out["collection_treatment"] == "").to_numpy()  # default-model reasons
    X = feats.loc[adverse, bundle.feature_names].to_numpy(np.float64)
    contrib = bundle.models["default"].booster.predict(X, pred_contrib=True)[:, :-1]
    catalog = with_latent(default_catalog(), latent)
    idx, _ = top_adverse(contrib, 4, eligible(X, bundle.feature_names, catalog))
    position = {f.name: i + 1 for i, f in enumerate(catalog)}
    lgb_codes = np.array([f"R{position[n]:02d}" for n in bundle.feature_names] + [""], dtype=object)[idx]
    ours = out.loc[adverse, ["reason_2", "reason_3", "reason_4"]].to_numpy(object)  # slot 1 is the rule
    assert adverse.sum() > 500
    assert (ours == lgb_codes[:, :3]).mean() == 1.0
    assert manifest["rows"]["adverse"] == int(out["adverse"].sum())
    # the features that are no reason (the limit, the product, the economy, the income band) never are one,
    # though the model leans on them: unfiltered, they would be
    never = {f"R{position[f.name]:02d}" for f in catalog if not f.may_be_reason}
    given = out[[f"reason_{i}" for i in range(1, 5)]].to_numpy(object)
    assert never and not np.isin(given, list(never)).any()
    unfiltered = np.array([f"R{position[n]:02d}" for n in bundle.feature_names] + [""], dtype=object)[
        top_adverse(contrib, 4)[0]]
    assert np.isin(unfiltered, list(never)).any()
    texts = out[[f"reason_text_{i}" for i in range(1, 5)]].to_numpy(object).ravel()
    assert not [t for t in texts if re.search(r"\(1\) or not \(0\)|: -?\d|\d\.\d{3}", t)]


def test_the_manifest_describes_the_run_and_matches_the_file(baseline_dir, baseline_tables, bundle_dir, tmp_path):
    out = tmp_path / "s.parquet"
    m = _score(baseline_dir[0], out, bundle_dir, workers=1, as_of=AS_OF)
    on_disk = json.loads(manifest_path(out).read_text())
    assert on_disk == json.loads(json.dumps(m, default=str))
    assert m["output"]["sha256"] == sha256(out) and m["output"]["rows"] == pq.read_metadata(out).num_rows
    assert len(m["input"]["fingerprint"]) == 64 and m["model"]["version"].startswith("bundle:")
    assert len(m["policy"]["hash"]) == 64 and m["previous"] == {"source": "recomputed", "as_of": "2025-05-31"}
    assert set(m["timings"]["stages_worker_s"]) == {"read", "features", "predict", "policy", "reasons", "assemble"}
    assert m["drift"]["score"]["level"] in ("stable", "warning", "alert")
    # the input statistics the chunks returned add up to the whole tables
    for name, stats in m["input"]["tables"].items():
        table = getattr(baseline_tables, name)
        assert stats == {"rows": len(table), "account_id_min": int(table["account_id"].min()),
                         "account_id_max": int(table["account_id"].max())}, name
    bundle = load_bundle(bundle_dir)
    assert list(m["drift"]["features"]) == sorted(bundle.feature_names)  # the catalog's and the filter's
    # the drift figures are the PSI of the whole column, though counted chunk by chunk
    frame = pd.read_parquet(out)
    scored = frame["model_score"].dropna()  # accounts off the book have no score and stay out of its drift
    assert len(scored) < len(frame) and frame.loc[frame["model_score"].isna(), "status"].isin(OFF_BOOK).all()
    assert m["drift"]["score"]["psi"] == pytest.approx(psi(bundle.reference["score"], scored), abs=1e-5)
    # a charged-off account is its status only: no score, no days past due, not in the drift or the control cell
    charged = frame["status"] == "charged_off"
    assert charged.any() and frame.loc[charged, ["pd_default", "score", "dpd_now"]].isna().all().all()
    assert not frame.loc[charged, "control_cell"].any() and m["rows"]["control_cell"] == frame["control_cell"].sum()
    book = frame.loc[~frame["status"].isin(OFF_BOOK), "dpd_now"]
    assert m["drift"]["features"]["dpd_now"]["psi"] == pytest.approx(psi(bundle.reference["features"]["dpd_now"],
                                                                            book), abs=1e-5)
    assert sum(m["rows"]["limit_action"].values()) == m["rows"]["scored"]
    # the counts behind the report are the output's own
    by_band = m["distributions"]["limit_action_by_score_band"]
    assert sum(sum(v.values()) for v in by_band.values()) == len(frame)
    assert sum(v.get("decrease", 0) for v in by_band.values()) == (frame["limit_action"] == "decrease").sum()
    adj = m["distributions"]["score_adjustment"]
    assert sum(adj["counts"]) == frame["score_adjustment"].notna().sum() == m["rows"]["with_previous_score"]
    report = Path(m["report"]).read_text()
    assert report.count("<img") == 3 and f"as of {AS_OF}" in report and m["model"]["version"] in report


def test_previous_scores_from_a_file_equal_the_recomputed_ones(small_world, bundle_dir, tmp_path):
    first = tmp_path / "may.parquet"
    _score(small_world, first, bundle_dir, workers=1, as_of="2025-05-31")
    recomputed = pd.read_parquet(_score(small_world, tmp_path / "a.parquet", bundle_dir, workers=1,
                                        as_of=AS_OF)["output"]["path"])
    from_file = pd.read_parquet(_score(small_world, tmp_path / "b.parquet", bundle_dir, workers=1, as_of=AS_OF,
                                       previous=first)["output"]["path"])
    pd.testing.assert_series_equal(recomputed["previous_score"], from_file["previous_score"])
    scored = recomputed["score"].notna()  # accounts on the book: closed and charged-off ones have no score
    assert recomputed.loc[scored, "previous_score"].notna().mean() > 0.9
    may = pd.read_parquet(first).set_index("account_id")["score"]
    both = from_file.set_index("account_id")
    np.testing.assert_array_equal(both.loc[may.index, "previous_score"], may)
    known = both["previous_score"].notna() & both["score"].notna()
    assert known[both["score"].notna()].mean() > 0.9 and both.loc[~known, "score_adjustment"].isna().all()
    assert (both.loc[known, "score_adjustment"] == both.loc[known, "score"] - both.loc[known, "previous_score"]).all()


def test_csv_input_scores_the_same_as_parquet(small_world, bundle_dir, tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    tables = load_tables(small_world)
    for name, frame in tables.loaded().items():
        frame.to_csv(csv_dir / f"{name}.csv", index=False)
    _score(small_world, tmp_path / "p.parquet", bundle_dir, workers=1, as_of=AS_OF, chunk_size=1_500)
    _score(csv_dir, tmp_path / "c.parquet", bundle_dir, workers=1, as_of=AS_OF, chunk_size=1_500)
    a, b = pd.read_parquet(tmp_path / "p.parquet"), pd.read_parquet(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


def _kill_when_a_chunk_is_done(args: list[str]) -> None:
    """Run score.py with its progress bar on a terminal; SIGKILL it when the bar says a chunk is written and more
    are to come."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    said = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 600)  # a hang guard, not a bound on speed
            assert ready, "score.py said nothing for 10 minutes"
            try:
                said += os.read(leader, 4096)
            except OSError:  # the job closed its terminal: it ended before a chunk was reported
                break
            counts = re.findall(rb" (\d+)/(\d+) \[", said)
            if counts and 0 < int(counts[-1][0]) < int(counts[-1][1]):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait()
        os.close(leader)
    assert proc.returncode == -signal.SIGKILL, \
        f"the job ended on its own before it could be killed:\n{said.decode(errors='replace')[-2000:]}"


def test_sigkill_midway_leaves_nothing_and_a_rerun_is_complete_and_identical(baseline_dir, bundle_dir, tmp_path):
    reference = tmp_path / "reference.parquet"
    _score(baseline_dir[0], reference, bundle_dir, workers=1, chunk_size=2_000)
    out = tmp_path / "killed" / "scores.parquet"
    args = [sys.executable, str(ROOT / "score.py"), "--model", str(bundle_dir), "--data", str(baseline_dir[0]),
            "--out", str(out), "--workers", "1", "--chunk-size", "2000"]
    _kill_when_a_chunk_is_done(args)
    assert list(out.parent.glob(".scores.parquet.part-*")), "killed while writing: its temporary file is there"
    assert not out.exists() and not manifest_path(out).exists()
    rerun = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert pq.read_table(out).equals(pq.read_table(reference))
    assert not list(out.parent.glob(".*part-*")), "the killed run's temporary file is cleared"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "score.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_bad_input_fails_clearly_with_nothing_at_the_output_path(small_world, bundle_dir, tmp_path):
    out = tmp_path / "o.parquet"
    base = ["--data", str(small_world), "--out", str(out), "--workers", "1"]

    def fails(args: list[str], *words: str) -> None:
        res = _cli(args, tmp_path)
        assert res.returncode != 0
        assert "Traceback" not in res.stderr, res.stderr[-3000:]
        for w in words:
            assert w in res.stderr, (w, res.stderr[-2000:])
        assert not out.exists() and not manifest_path(out).exists()
        assert not list(tmp_path.glob(".o.parquet*"))

    fails(["--model", "models:/nosuch@champion", *base], "models:/nosuch@champion is not in the registry")
    fails(["--model", str(tmp_path / "nothing"), *base], "not found")
    fails(["--model", str(bundle_dir), *base, "--as-of", "2030-01-31"], "after the data's extraction date")
    fails(["--model", str(bundle_dir), *base, "--as-of", "2001-01-31"], "before any data")
    fails(["--model", str(bundle_dir), *base, "--as-of", "2025-13-45"], "argument --as-of: '2025-13-45' is not a "
          "calendar date")
    # a bundle whose features are not this catalog's
    other = tmp_path / "other_bundle"
    import shutil

    shutil.copytree(bundle_dir, other)
    meta = json.loads((other / "bundle.json").read_text())
    meta["feature_names"] = meta["feature_names"][::-1]
    from models.bundle import _canonical, _sha

    meta.pop("checksum")
    meta["checksum"] = _sha(_canonical(meta))
    (other / "bundle.json").write_text(json.dumps(meta))
    fails(["--model", str(other), *base], "features differ")
    # a corrupt Parquet part
    broken = tmp_path / "broken"
    shutil.copytree(small_world, broken)
    part = sorted((broken / "payments").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    fails(["--model", str(bundle_dir), "--data", str(broken), "--out", str(out), "--workers", "1"],
          "payments", str(broken / "payments"))
    # previous scores for another portfolio
    prev = tmp_path / "prev.parquet"
    pd.DataFrame({"account_id": [10_000_001, 10_000_002], "as_of": pd.to_datetime(["2025-05-31"] * 2),
                  "score": [600.0, 610.0]}).to_parquet(prev)
    fails(["--model", str(bundle_dir), *base, "--as-of", AS_OF, "--previous", str(prev)],
          "not in", "other accounts", "10000001")
    fails(["--model", str(bundle_dir), *base, "--config", str(tmp_path / "none.toml")], "none.toml does not exist")


def test_an_existing_output_survives_a_failed_run(small_world, bundle_dir, tmp_path):
    out = tmp_path / "o.parquet"
    _score(small_world, out, bundle_dir, workers=1, as_of=AS_OF)
    before = sha256(out)
    with pytest.raises(ScoreError, match="after the data's extraction date"):
        _score(small_world, out, bundle_dir, workers=1, as_of="2031-01-31")
    assert sha256(out) == before


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=200), st.integers(1, 50), st.randoms(use_true_random=False))
def test_chunks_cover_every_account_once_and_never_split_a_customer(sizes, chunk, rnd):
    customer = np.repeat(np.arange(len(sizes)), np.minimum(sizes, 3))  # 1-3 accounts per customer
    if rnd.random() < 0.3:  # some portfolios interleave customers' account ids
        customer = customer[np.array(rnd.sample(range(len(customer)), len(customer)))]
    account = np.arange(100, 100 + len(customer)) * 3
    bounds = plan_chunks(account, customer, chunk)
    assert bounds[0][0] == account[0] and bounds[-1][1] == account[-1] + 1
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    which = np.searchsorted([lo for lo, _ in bounds], account, side="right") - 1
    per_customer = pd.Series(which).groupby(customer).nunique()
    assert (per_customer == 1).all()


def test_reason_modes_explain_adverse_rows_everyone_or_no_one(small_world, bundle_dir, tmp_path):
    frames = {mode: pd.read_parquet(_score(small_world, tmp_path / f"{mode}.parquet", bundle_dir, workers=1,
                                           as_of=AS_OF, reasons=mode)["output"]["path"]) for mode in
              ("adverse", "all", "none")}
    adverse, every, none = frames["adverse"], frames["all"], frames["none"]
    quiet = ~adverse["adverse"]
    assert quiet.any() and adverse["adverse"].any()
    assert (adverse.loc[quiet, "reason_1"] == "").all(), "no reasons without an adverse decision by default"
    assert (every.loc[quiet, "reason_1"].str.startswith("R")).mean() > 0.9, "--reasons all explains everyone"
    assert (every.loc[~quiet, "reason_1"] == adverse.loc[~quiet, "reason_1"]).all()
    assert (none.loc[~quiet, "reason_1"].str.startswith("P")).all(), "rules still name themselves"
    assert (none[["reason_2", "reason_3", "reason_4"]] == "").all().all()
    decisions = ["score", "limit_action", "new_credit_limit", "collection_treatment", "adverse"]
    pd.testing.assert_frame_equal(adverse[decisions], none[decisions])


def test_a_bundle_without_a_target_keeps_its_columns_null_and_its_rules_silent(small_world, bundle_dir, tmp_path):
    from scoring.output import SCHEMA, SCHEMA_VERSION

    bundle = load_bundle(bundle_dir)
    del bundle.models["early_warning"], bundle.models["self_cure"]
    partial = bundle.save(tmp_path / "default_only")
    m = _score(small_world, tmp_path / "s.parquet", partial, workers=1, as_of=AS_OF)
    out = pd.read_parquet(tmp_path / "s.parquet")
    assert pq.read_schema(tmp_path / "s.parquet").names == SCHEMA.names, "the same columns whatever the bundle"
    assert (out["schema_version"] == SCHEMA_VERSION).all()
    for column in ("p_early_warning", "early_warning", "early_warning_action", "p_self_cure"):
        assert out[column].isna().all(), f"{column}: nothing computed it, so it is null"
    assert m["model"]["null_columns"] == ["p_early_warning", "early_warning", "early_warning_action", "p_self_cure"]
    # the rules that read a missing model do not fire: no warning, no escalation quoting an estimate
    texts = out[[f"reason_text_{i}" for i in range(1, 5)]].fillna("").agg(" ".join, axis=1)
    assert not texts.str.contains("chance to pay without contact").any()
    late = out[(out["dpd_now"] > 0) & (out["status"] != "charged_off") & ~out["control_cell"]
               & (out["collection_treatment"] != "legal_review")]
    assert len(late) and (late["collection_treatment"] == late["collection_intended"]).all()
    policy = load_policy()
    buckets = [b.min_dpd for b in policy.collection.buckets]
    unlikely = np.array([b.unlikely for b in policy.collection.buckets], dtype=object)
    expected = unlikely[np.searchsorted(buckets, late["dpd_now"].to_numpy(), side="right") - 1]
    assert (late["collection_treatment"].to_numpy() == expected).all(), "without the model: the unlikely treatment"
    assert "early_warning" not in m["rows"] or m["rows"]["early_warning"] == 0
    # a policy that requires the model refuses the bundle, before anything is written
    strict = tmp_path / "strict.toml"
    strict.write_text("[collection]\nrequire_self_cure = true\n")
    with pytest.raises(ScoreError, match=r"no model for self_cure.*require_self_cure"):
        _score(small_world, tmp_path / "u.parquet", partial, workers=1, as_of=AS_OF, policy=strict)
    assert not (tmp_path / "u.parquet").exists()
    del bundle.models["default"]
    no_default = bundle.save(tmp_path / "no_default")
    with pytest.raises(ScoreError, match="no model for the default target"):
        _score(small_world, tmp_path / "t.parquet", no_default, workers=1, as_of=AS_OF)
    assert not (tmp_path / "t.parquet").exists()


def test_the_job_supplies_every_input_the_policy_declares():
    from policy.decide import INPUTS
    from scoring.chunk import COMPUTED, FROM_FEATURES

    assert set(INPUTS) <= set(FROM_FEATURES) | set(COMPUTED)
    assert set(FROM_FEATURES.values()) <= set(default_catalog().names) | {"account_id"}


def test_a_model_on_a_subset_of_the_catalog_scores_with_exactly_its_features(small_world, tmp_path):
    """A champion trained before features were added (any subset of today's catalog, in its own order) stays
    scoreable: the job feeds it its own list."""
    from models.bundle import Bundle, TargetModel
    from models.calibration import fit_calibrator
    from models.lgbm import fit_booster, lgb_params
    from models.scale import ScoreScale
    from validation.metrics import reference_distribution

    tables = load_tables(small_world)
    feats = build_features(tables, ["2025-03-31"], default_catalog())
    names = ["util_n3", "late_n6", "dpd_now"]  # not the catalog's order
    X = feats[names]
    y = (np.random.default_rng(0).uniform(size=len(X)) < 0.05 + 0.1 * (X["late_n6"] > 0)).astype(float)
    fit = fit_booster(X, y, X, y, lgb_params([1, 1, 1], seed=1), num_boost_round=50)  # scored, not judged
    prints = default_catalog().fingerprints()
    model = TargetModel.from_booster("default", fit.booster, fit_calibrator(fit.booster.predict(X), y), 1)
    bundle = Bundle({"default": model},
                    names, default_catalog().version, ScoreScale(),
                    {"features": {n: reference_distribution(X[n].to_numpy()) for n in names}},
                    fingerprints={n: prints[n] for n in names})
    path = bundle.save(tmp_path / "subset")
    manifest = _score(small_world, tmp_path / "s.parquet", path, workers=1, as_of=AS_OF)
    out = pd.read_parquet(tmp_path / "s.parquet")
    now = build_features(tables, [AS_OF], default_catalog())
    expected = load_bundle(path).predict(now)
    on_book = ~out["status"].isin(OFF_BOOK).to_numpy()
    np.testing.assert_allclose(out.loc[on_book, "pd_default"], expected.loc[on_book, "pd_default"], atol=1e-12)
    assert sorted(manifest["drift"]["features"]) == sorted(names)
    assert manifest["model"]["targets"] == ["default"] and out["p_self_cure"].isna().all()


QUICK_FEATURES = ["util_n3", "late_n6", "dpd_now", "balance_now"]


def _quick_bundle(tables, folder: Path) -> Path:
    """A model per target on four features, fitted in seconds to labels drawn at random: enough to score with.
    Validated on its own rows, a fit would never stop early: 50 rounds each."""
    from models.bundle import Bundle, TargetModel
    from models.calibration import fit_calibrator
    from models.lgbm import fit_booster, lgb_params
    from models.scale import ScoreScale
    from validation.metrics import reference_distribution

    X = build_features(tables, ["2025-03-31"], default_catalog())[QUICK_FEATURES]
    rng = np.random.default_rng(0)
    models = {}
    for target, rate in (("default", 0.05), ("early_warning", 0.3), ("self_cure", 0.5)):
        y = (rng.uniform(size=len(X)) < rate + 0.1 * (X["late_n6"] > 0)).astype(float)
        fit = fit_booster(X, y, X, y, lgb_params([0] * len(QUICK_FEATURES), seed=1), num_boost_round=50)
        models[target] = TargetModel.from_booster(target, fit.booster, fit_calibrator(fit.booster.predict(X), y), 1)
    prints = default_catalog().fingerprints()
    bundle = Bundle(models, QUICK_FEATURES, default_catalog().version, ScoreScale(),
                    {"features": {n: reference_distribution(X[n].to_numpy()) for n in QUICK_FEATURES}},
                    fingerprints={n: prints[n] for n in QUICK_FEATURES})
    return bundle.save(folder)


@pytest.fixture(scope="module")
def closing_world(small_world, tmp_path_factory):
    """The small world with every third account on the book at AS_OF closed on its last statement's day (so
    its last bill may still be unpaid), a quick bundle, and the ids of the accounts closed at AS_OF: those and
    the ones the living book closed itself (lines closed by their holders, loans repaid)."""
    tables = load_tables(small_world)
    prep = Prepared(tables)
    last = tables.bills.groupby("account_id")["statement_date"].max()
    last = last[last <= pd.Timestamp(AS_OF)]
    on_book = prep.account_id[prep.on_book(int(np.datetime64(AS_OF, "D").astype(np.int64)))]
    closed = np.intersect1d(on_book, last.index.to_numpy())[::3]
    accounts = tables.accounts.copy()
    shut = accounts["account_id"].isin(closed)
    accounts.loc[shut, "close_date"] = accounts.loc[shut, "account_id"].map(last)
    folder = tmp_path_factory.mktemp("worlds") / "closing"
    folder.mkdir()
    for name, frame in {**tables.loaded(), "accounts": accounts}.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "_manifest.json").write_text(json.dumps({"extraction_date": tables.extraction.text}))
    day = int(np.datetime64(AS_OF, "D").astype(np.int64))
    own = prep.account_id[(prep.close_day <= day) & (prep.charge_off_day > day)]
    assert len(own) > 100  # the living book closes accounts of its own
    return folder, _quick_bundle(tables, tmp_path_factory.mktemp("bundle") / "quick"), np.union1d(closed, own)


def test_a_closed_account_keeps_no_line_gets_no_warning_and_is_collected_outside_the_drift_and_the_cell(
        closing_world, tmp_path):
    data, bundle, closed_ids = closing_world
    m = _score(data, tmp_path / "s.parquet", bundle, workers=1, as_of=AS_OF)
    out = pd.read_parquet(tmp_path / "s.parquet").set_index("account_id")
    closed = out.index.isin(closed_ids)
    assert (out.loc[closed, "status"] == "closed").all() and (out.loc[~closed, "status"] != "closed").all()
    rows = out[closed]
    # off the book: no probability or score, so no score drop and no early warning; the line is gone
    assert rows[["pd_default", "model_score", "score", "score_adjustment", "p_early_warning",
                 "p_self_cure"]].isna().all().all()
    assert not rows["early_warning"].any() and (out.loc[~closed, "p_early_warning"].notna().any())
    assert (rows["limit_action"] == "already_closed").all() and (rows["new_credit_limit"] == 0).all()
    # its last bill, if unpaid, is collected as intended: never in the control cell, never in recovery
    late = rows["dpd_now"] > 0
    assert late.sum() >= 5 and (~late).sum() > 100
    assert (rows.loc[late, "collection_treatment"] == rows.loc[late, "collection_intended"]).all()
    assert not rows.loc[late, "collection_treatment"].isin(["", "recovery"]).any()
    assert (rows.loc[late, "treatment_probability"] == 1.0).all()
    assert (rows.loc[~late, "collection_treatment"] == "").all()
    policy = load_policy()
    hashed = control_cell(rows.index.to_numpy(), policy.collection.control_share, policy.collection.control_salt)
    assert hashed.sum() > 10 and not rows["control_cell"].any(), "drawn by the hash, kept out of the cell"
    # the counts: by status, and the closed lines kept apart from the net limit change
    assert m["rows"]["status"]["closed"] == len(rows)
    assert m["limits"]["already_closed"] == {
        "accounts": len(rows), "change": pytest.approx(-rows["credit_limit"].sum(), abs=0.01)}
    # the drift is the book's: neither charged-off nor closed accounts count
    feats = build_features(load_tables(data), [AS_OF], default_catalog()).set_index("account_id").loc[out.index]
    book = ~out["status"].isin(OFF_BOOK).to_numpy()
    reference = load_bundle(bundle).reference["features"]
    moved = False
    for name in QUICK_FEATURES:
        assert m["drift"]["features"][name]["psi"] == pytest.approx(psi(reference[name], feats.loc[book, name]),
                                                                     abs=1e-5), name
        with_closed = psi(reference[name], feats.loc[book | closed, name])
        moved |= abs(with_closed - m["drift"]["features"][name]["psi"]) > 1e-4
    assert moved, "the closed accounts would have moved some feature's drift"


def _wilson(cured: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a proportion."""
    p = cured / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_mid_month_collection_gives_the_milder_treatment_to_those_who_do_cure(baseline_dir, baseline_tables,
                                                                              bundle_dir, tmp_path):
    """Scored on the 12th (revolving bills fall due on the 8th-10th), the accounts the policy means to treat as
    likely to pay without contact do cure more often within 30 days than the others, in each early bucket."""
    from features.labels import build_labels

    policy = load_policy()
    frames = []
    for day in ("2025-09-12", "2025-10-12", "2025-11-12"):
        out = tmp_path / f"s-{day}.parquet"
        _score(baseline_dir[0], out, bundle_dir, workers=1, as_of=day)
        cured = build_labels(baseline_tables, [day])[["account_id", "self_cure"]]
        frames.append(pd.read_parquet(out).merge(cured, on="account_id", how="left"))
    scored = pd.concat(frames)
    for lo, hi in ((1, 2), (3, 14)):
        bucket = next(b for b in policy.collection.buckets if b.min_dpd == lo)
        rows = scored[scored["dpd_now"].between(lo, hi) & scored["self_cure"].notna()]
        likely = rows.loc[rows["collection_intended"] == bucket.likely, "self_cure"]
        unlikely = rows.loc[rows["collection_intended"] == bucket.unlikely, "self_cure"]
        assert len(likely) >= 50 and len(unlikely) >= 50, (lo, hi, len(likely), len(unlikely))
        likely_lo, _ = _wilson(int(likely.sum()), len(likely))
        _, unlikely_hi = _wilson(int(unlikely.sum()), len(unlikely))
        assert likely_lo > unlikely_hi, (f"{lo}-{hi} DPD: likely cure {likely.mean():.3f} (n {len(likely)}) vs "
                                         f"unlikely {unlikely.mean():.3f} (n {len(unlikely)}): the intervals overlap")


# ---------------------------------------------------------------------------- drift: the economy and its range


def _stored(reference: dict) -> dict:
    return json.loads(json.dumps(reference))  # as the bundle stores it


def _economy_reference(with_range: bool) -> dict:
    """A drift reference as training writes it: an account's own feature, the stress index over 24 months
    of a seasonal calm (with its training range unless `with_range` is off, as older bundles have none) and
    the calendar month (seasonal: never a range)."""
    rng = np.random.default_rng(5)
    stress = np.repeat(np.tile([0.05, 0.25, 0.1, 0.0, -0.05, 0.0], 4), 500)
    stress_ref = reference_distribution(stress)
    if with_range:
        stress_ref["range"] = training_range(stress)
    months = np.repeat(np.tile(np.arange(1, 13), 2), 250)
    return _stored({"features": {"util_n3": reference_distribution(rng.beta(2, 5, len(stress))),
                                 "macro_stress_index": stress_ref, "calendar_month": reference_distribution(months)},
                    "score": reference_distribution(rng.normal(650, 60, len(stress)))})


def _night(reference: dict, stress: float, util_shift: float = 0.0, n: int = 4_000) -> dict:
    """A night's drift: the book's histograms (and the stress index's extremes, as the chunks keep them)."""
    rng = np.random.default_rng(6)
    book = {"util_n3": np.clip(rng.beta(2, 5, n) + util_shift, 0, None), "macro_stress_index": np.full(n, stress),
            "calendar_month": np.full(n, 7.0), "score": rng.normal(650, 60, n)}
    counts = {name: bin_counts(reference["score"] if name == "score" else reference["features"][name], v)
              for name, v in book.items()}
    return drift_summary(reference, counts, {"macro_stress_index": np.array([stress, stress])})


def test_only_the_economy_s_levels_are_judged_by_their_training_range():
    catalog = default_catalog()
    assert {f.name for f in catalog if f.one_value_per_date} == {"macro_stress_index", "macro_unemployment_rate",
                                                                 "calendar_month"}
    assert {f.name for f in catalog if f.judged_by_range} == {"macro_stress_index", "macro_unemployment_rate"}
    with pytest.raises(ValueError, match="only a one-value-per-date feature"):
        dataclasses.replace(catalog["util_n3"], seasonal=True)


def test_the_economy_inside_its_training_range_is_stable_though_its_csi_is_large():
    drift = _night(_economy_reference(with_range=True), stress=0.1)
    stress = drift["features"]["macro_stress_index"]
    assert stress["psi"] > 0.25, "one value per date: its CSI is large by construction"
    assert stress == {"psi": stress["psi"], "counts": stress["counts"], "level": "stable", "value": 0.1,
                      "training_range": [-0.05, 0.25], "margin": pytest.approx(0.075)}
    assert drift["features"]["calendar_month"]["level"] == "one value per date"
    assert drift["features"]["util_n3"]["level"] == "stable" and drift["score"]["level"] == "stable"
    assert drift["alert"] == drift["warning"] == []


def test_the_economy_beyond_its_training_range_by_more_than_the_margin_alerts_and_says_so(caplog):
    reference = _economy_reference(with_range=True)
    assert _night(reference, stress=0.3)["warning"] == ["macro_stress_index"]  # outside by 0.05, within 0.075
    assert _night(reference, stress=-0.1)["warning"] == ["macro_stress_index"]
    assert _night(reference, stress=-0.2)["alert"] == ["macro_stress_index"]
    drift = _night(reference, stress=1.75)  # a shock of 1.6 on a February
    assert drift["alert"] == ["macro_stress_index"] and drift["warning"] == []
    assert drift["features"]["macro_stress_index"]["value"] == 1.75
    with caplog.at_level("WARNING", logger="dynascore.scoring"):
        log_drift(drift)
    assert caplog.messages == ["macro_stress_index 1.75 is outside the training range [-0.05, 0.25] by 1.5, more "
                               "than the 0.075 allowed: the models never saw such a value and score it as the "
                               "range's edge"]


def test_a_reference_without_a_training_range_judges_the_economy_as_before(caplog):
    reference = _economy_reference(with_range=False)
    drift = _night(reference, stress=1.75, util_shift=0.3)
    entry = drift["features"]["macro_stress_index"]
    assert entry == {"psi": entry["psi"], "counts": entry["counts"], "level": "one value per date"}
    assert drift["alert"] == ["util_n3"], "the account's own features are judged by their CSI, as ever"
    with caplog.at_level("WARNING", logger="dynascore.scoring"):
        log_drift(drift)
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith(
        "feature CSI alert (above 0.25) for 1 of 1 features judged by CSI, highest: util_n3 ")


def test_an_economy_missing_on_every_row_is_judged_by_its_missing_share():
    reference = _economy_reference(with_range=True)
    counts = {"macro_stress_index": bin_counts(reference["features"]["macro_stress_index"], np.full(100, np.nan))}
    drift = drift_summary(reference, counts, {"macro_stress_index": np.full(2, np.nan)})
    assert drift["features"]["macro_stress_index"]["level"] == "alert" and "value" not in drift["features"][
        "macro_stress_index"]
    counts = {"macro_stress_index": bin_counts(reference["features"]["macro_stress_index"], np.full(100, 0.1))}
    without = drift_summary(reference, counts)  # no extremes to judge by: reported, never a CSI alert
    assert without["features"]["macro_stress_index"]["level"] == "one value per date" and without["alert"] == []


def test_a_feature_set_by_the_run_day_is_reported_and_never_judged(caplog):
    """Days since the newest bill fell due sit near 21 for most of the book on a month end and spread over the
    month in training: a large CSI that says when the job ran. It is reported with its level, never a warning."""
    assert {f.name for f in default_catalog() if f.run_day} == {"days_since_due"}
    rng = np.random.default_rng(8)
    reference = _stored({"features": {"days_since_due": reference_distribution(rng.integers(0, 31, 20_000)),
                                      "util_n3": reference_distribution(rng.beta(2, 5, 20_000))}})
    book = {"days_since_due": np.full(4_000, 21.0), "util_n3": rng.beta(2, 5, 4_000)}
    counts = {n: bin_counts(reference["features"][n], v) for n, v in book.items()}
    drift = drift_summary(reference, counts)
    entry = drift["features"]["days_since_due"]
    assert entry["psi"] > 0.25 and entry["level"] == "set by the run day"
    assert drift["alert"] == drift["warning"] == [] and drift["features"]["util_n3"]["level"] == "stable"
    with caplog.at_level("WARNING", logger="dynascore.scoring"):
        log_drift(drift)
    assert caplog.messages == []


def test_a_model_trained_on_a_calm_economy_alerts_on_the_stress_index_once_a_shock_is_published(
        baseline_dir, shock_dir, bundle_dir, tmp_path, caplog):
    """The shock world's stress index leaves the range the models were trained on from the month the shock is
    published: scored that day, the stress-linked features alert; the calm world scored on the same day raises
    no alert and warns on at most 5 % of the features."""
    calm, shocked = (pd.read_parquet(d[0] / "macro.parquet") for d in (baseline_dir, shock_dir))
    moved = shocked["stress_index"].to_numpy() != calm["stress_index"].to_numpy()
    onset = shocked.loc[moved, "published_date"].min()
    assert moved.any() and (shocked.loc[moved, "published_date"] >= onset).all()
    reference = load_bundle(bundle_dir).reference["features"]
    assert "range" in reference["macro_stress_index"] and "range" not in reference["calendar_month"]
    lo, hi = reference["macro_stress_index"]["range"]
    assert [lo, hi] == [calm["stress_index"].min(), calm["stress_index"].max()], "every season was trained on"

    runs = {}
    for name, data in (("calm", baseline_dir[0]), ("shock", shock_dir[0])):
        caplog.clear()
        with caplog.at_level("WARNING", logger="dynascore.scoring"):
            m = _score(data, tmp_path / f"{name}.parquet", bundle_dir, workers=1, chunk_size=8_000,
                       as_of=f"{onset:%Y-%m-%d}", reasons="none")
        runs[name] = m["drift"], list(caplog.messages), Path(m["report"]).read_text()
    (calm_drift, calm_said, calm_report), (shock_drift, shock_said, shock_report) = runs["calm"], runs["shock"]
    stress = shock_drift["features"]["macro_stress_index"]
    published = shocked.loc[shocked["published_date"] == onset, "stress_index"].item()
    assert stress["level"] == "alert" and stress["value"] == pytest.approx(published)
    assert stress["value"] > hi + stress["margin"] and stress["training_range"] == [lo, hi]
    assert {"macro_stress_index", "macro_unemployment_rate"} <= set(shock_drift["alert"])
    said = f"macro_stress_index {published:.4g} is outside the training range"
    assert any(s.startswith(said) for s in shock_said) and said in shock_report

    assert calm_drift["alert"] == [], calm_drift["alert"]
    assert len(calm_drift["warning"]) <= 0.05 * len(calm_drift["features"]), calm_drift["warning"]
    assert calm_drift["features"]["macro_stress_index"]["level"] == "stable"
    assert not any("training range" in s for s in calm_said) and "is outside the training range" not in calm_report
