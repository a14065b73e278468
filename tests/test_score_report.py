"""An output path keeps one run's output, and the run report's figures are the scored rows' own.

Two tiny worlds with the same extraction date (so the same default output name) and a quickly trained model.
A run never replaces an output written from other inputs unless told to; the report's and the manifest's
figures -- reason codes, limit changes, expected losses, guardrails, changes since the last run -- are
recomputed here from the Parquet files the runs wrote.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import scoring.job
from features.builders import build_features
from features.catalog import default_catalog
from features.contract import load_tables
from features.targets import LabelConfig
from policy.config import load_policy
from policy.rules import RULES
from scoring.job import ScoreError, ScoreRequest, run
from scoring.output import manifest_path, report_path
from scoring.previous import last_run
from simulation.generate import Request, generate
from training.config import TrainConfig
from training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
JUNE, MAY = "2024-06-30", "2024-05-31"  # the worlds' extraction date, and a month before


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worlds")
    generate(folder / "a", Request(1_500, 18, seed=3), progress=False)
    generate(folder / "b", Request(1_200, 18, seed=5), progress=False)
    return folder / "a", folder / "b"


def _train(world: Path, folder: Path, rounds: int) -> Path:
    cfg = TrainConfig(targets=("default",), n_boot=10, num_boost_round=rounds, valid_months=2, test_months=1,
                      labels=LabelConfig(default_months=2))
    return train(load_tables(world), cfg, progress=lambda _: None).bundle.save(folder)


@pytest.fixture(scope="module")
def bundle(worlds, tmp_path_factory):
    return _train(worlds[0], tmp_path_factory.mktemp("bundle") / "bundle", 30)


@pytest.fixture(scope="module")
def nights(worlds, bundle, tmp_path_factory):
    """Two nights of world A in one folder: May, then June (which finds May's run to compare with)."""
    folder = tmp_path_factory.mktemp("nights")
    may = _score(worlds[0], folder / "may.parquet", bundle, as_of=MAY)
    june = _score(worlds[0], folder / "june.parquet", bundle, as_of=JUNE)
    return folder, may, june


def _score(data: Path, out: Path | None, bundle: Path, **kw) -> dict:
    return run(ScoreRequest(Path(data), out, model=str(bundle), **{"workers": 1, "chunk_size": 500, **kw}))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    """score.py's main, in this process (one worker: the chunks run here too)."""
    sys.path.insert(0, str(ROOT))
    try:
        import score
    finally:
        sys.path.remove(str(ROOT))
    code = score.main(["--workers", "1", *args])
    said = capsys.readouterr()
    return code, said.out, said.err


# ------------------------------------------------------------------------------- an output path keeps its output


def test_a_run_on_another_data_folder_keeps_the_output_unless_told_to_overwrite(worlds, bundle, tmp_path, capsys,
                                                                                 monkeypatch):
    a, b = worlds
    out = tmp_path / "scores.parquet"
    code, said, _ = _main(["--model", str(bundle), "--data", str(a), "--out", str(out)], capsys)
    assert code == 0 and "net limit change" in said and "nothing to compare with" in said
    before = _files(tmp_path)
    loads = []
    real_bundle = scoring.job._bundle
    monkeypatch.setattr(scoring.job, "_bundle", lambda *x: loads.append(1) or real_bundle(*x))

    code, _, err = _main(["--model", str(bundle), "--data", str(b), "--out", str(out)], capsys)
    assert code == 1 and "Traceback" not in err
    assert err == (f"error: {out} was written from other inputs than this run's, and is kept:\n"
                   f"  data folder: {a.resolve()} (this run: {b.resolve()})\n"
                   "Pass --overwrite to replace it, or --out FILE to write this run elsewhere.\n")
    assert _files(tmp_path) == before and loads == [], "refused before the model loaded, with nothing written"

    code, said, _ = _main(["--model", str(bundle), "--data", str(b), "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and loads == [1]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["input"]["data"] == str(b.resolve()) and manifest["rows"]["scored"] == len(pd.read_parquet(out))
    assert str(b.resolve()) in report_path(out).read_text()
    assert "nothing to compare with" in said  # the output it replaced was another portfolio's


def test_a_rerun_with_the_same_inputs_replaces_its_own_output(worlds, bundle, tmp_path):
    out = tmp_path / "scores.parquet"
    first = _score(worlds[0], out, bundle)
    scores = pq.read_table(out)
    again = _score(worlds[0], out, bundle, chunk_size=700)  # how the run goes is not an input
    assert pq.read_table(out).equals(scores) and again["input"] == first["input"]
    for figures in ("rows", "limits", "guardrails", "reasons"):  # nor do the figures depend on the chunks
        assert again[figures] == first[figures], figures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.manifest.json", "scores.parquet",
                                                          "scores.report.html"]


def test_the_default_output_of_another_data_folder_on_the_same_date_is_refused(worlds, bundle, tmp_path,
                                                                                monkeypatch):
    """The default name depends only on the as-of date: the demo's scores were replaced by another folder's."""
    monkeypatch.chdir(tmp_path)
    a, b = worlds
    _score(a, None, bundle)
    before = _files(tmp_path)
    with pytest.raises(ScoreError) as refused:
        _score(b, None, bundle)
    out = Path("scores") / f"scores-{JUNE}.parquet"
    assert str(refused.value) == (f"{out} was written from other inputs than this run's, and is kept:\n"
                                  f"  data folder: {a.resolve()} (this run: {b.resolve()})\n"
                                  "Pass --overwrite to replace it, or --out FILE to write this run elsewhere.")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("change", ["input files", "policy", "model", "as-of date", "no manifest"])
def test_other_inputs_are_refused_before_any_chunk_is_scored(change, worlds, bundle, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(worlds[0], data)
    out = tmp_path / "out" / "scores.parquet"
    written = _score(data, out, bundle, as_of=MAY)
    kw: dict = {"as_of": MAY}
    if change == "input files":  # the same folder holds another extract now
        shutil.rmtree(data)
        shutil.copytree(worlds[1], data)
        expected = f"input files' SHA-256: {written['input']['fingerprint'][:12]} (this run: "
    elif change == "policy":
        config = tmp_path / "policy.toml"
        config.write_text("[limit]\nel_budget = 300.0\n")
        kw["policy"] = config
        expected = f"policy hash: {written['policy']['hash'][:12]} (this run: {load_policy(config).hash[:12]})"
    elif change == "model":
        bundle = _train(worlds[0], tmp_path / "other_bundle", 12)
        expected = f"model: {written['model']['version']} (this run: bundle:"
    elif change == "as-of date":
        kw["as_of"] = "2024-06-15"
        expected = f"as-of date: {MAY} (this run: 2024-06-15)"
    else:
        manifest_path(out).unlink()
        expected = (f"{out} is there without a readable manifest (scores.manifest.json), so what it was written "
                    "from is unknown; it is kept.")
    before = _files(out.parent)
    monkeypatch.setattr(scoring.job, "_results", lambda *_: pytest.fail("a chunk was scored before the refusal"))
    with pytest.raises(ScoreError) as refused:
        _score(data, out, bundle, **kw)
    assert expected in str(refused.value) and "--overwrite" in str(refused.value)
    assert _files(out.parent) == before


# ------------------------------------------------------------------------------- the report's figures


def _frame(manifest: dict) -> pd.DataFrame:
    return pd.read_parquet(manifest["output"]["path"])


def test_reason_code_counts_are_the_adverse_rows_own(nights):
    june = nights[2]
    frame = _frame(june)
    adverse = frame[frame["adverse"]]
    slots = adverse[[f"reason_{i}" for i in range(1, 5)]]
    any_slot = pd.Series(slots.to_numpy().ravel()).loc[lambda s: s != ""].value_counts()
    first = adverse["reason_1"].loc[lambda s: s != ""].value_counts()
    codes = june["reasons"]["codes"]
    assert june["reasons"]["adverse"] == len(adverse) > 50
    assert {c["code"]: c["accounts"] for c in codes} == any_slot.to_dict()
    assert {c["code"]: c["first"] for c in codes if c["first"]} == first.to_dict()
    assert [c["accounts"] for c in codes] == sorted(any_slot, reverse=True), "most frequent first"
    assert all(c["share"] == pytest.approx(c["accounts"] / len(adverse), abs=1e-4) for c in codes)
    titles = {r.code: r.title for r in RULES}
    features = list(default_catalog())
    for c in codes:
        expected = titles[c["code"]] if c["code"].startswith("P") else features[int(c["code"][1:]) - 1].description
        assert c["title"] == expected, c
    report = Path(june["report"]).read_text()
    assert f"{codes[0]['code']}</td>" in report and codes[0]["title"] in report


def test_limit_changes_and_expected_losses_are_the_rows_own(nights, worlds):
    june = nights[2]
    frame = _frame(june)
    change = frame["new_credit_limit"] - frame["credit_limit"]
    limits = june["limits"]
    for action, key in (("increase", "increases"), ("decrease", "decreases"), ("closed", "closed"),
                        ("already_closed", "already_closed")):
        rows = frame["limit_action"] == action
        assert limits[key] == {"accounts": int(rows.sum()), "change": pytest.approx(change[rows].sum(), abs=0.01)}
    assert limits["increases"]["accounts"] > 100 and limits["decreases"]["accounts"] > 5
    assert limits["net_change"] == pytest.approx(change[frame["limit_action"].isin(["increase", "decrease"])].sum())
    for (product, action), group in frame.groupby(["product", "limit_action"]):
        sums = limits["by_product"][product][action]
        assert sums["accounts"] == len(group)
        assert sums["limit"] == pytest.approx(group["credit_limit"].sum(), abs=0.01)
        assert sums["new_limit"] == pytest.approx(group["new_credit_limit"].sum(), abs=0.01)
    # expected loss = PD x LGD x (drawn + CCF x undrawn), at the current limit and at the new one
    balance = build_features(load_tables(worlds[0]), [JUNE], default_catalog()).set_index("account_id")["balance_now"]
    drawn = np.maximum(balance.loc[frame["account_id"]].fillna(0).to_numpy(), 0.0)
    p = load_policy().limit

    def expected_loss(limit: pd.Series) -> float:
        return float(np.nansum(frame["pd_default"] * p.lgd * (drawn + p.ccf * np.maximum(limit - drawn, 0.0))))

    el = limits["expected_loss"]
    tolerance = 0.005 * len(frame)  # summed in whole cents per account
    assert el["before"] == pytest.approx(expected_loss(frame["credit_limit"]), abs=tolerance)
    assert el["after"] == pytest.approx(expected_loss(frame["new_credit_limit"]), abs=tolerance)
    assert el["accounts"] == frame["pd_default"].notna().sum() and el["after"] != el["before"]
    assert el["change"] == pytest.approx(el["after"] - el["before"], abs=0.011)


def test_the_no_raise_guardrails_count_the_raises_they_blocked(nights, worlds):
    """P08-P10 block a band's raise: recounted from the rows and the features the rules read."""
    june = nights[2]
    frame = _frame(june).set_index("account_id")
    feats = build_features(load_tables(worlds[0]), [JUNE], default_catalog()).set_index("account_id").loc[frame.index]
    policy = load_policy()
    lowest_raise = min(b.min_score for b in policy.limit.bands if b.step > 0)  # bands: highest first, steps falling
    stood = (frame["product"] == "revolving") & (frame["status"] == "active") \
        & (frame["dpd_now"] < policy.limit.freeze_dpd)  # a freeze, a new line, a cash loan set the limit themselves
    raise_ = stood & (frame["score"] >= lowest_raise)
    late = raise_ & (frame["dpd_now"] > 0)
    recently = raise_ & ~late & (feats["days_since_late"] <= policy.limit.no_increase_days_after_late)
    unused = raise_ & ~late & ~recently & (feats["util_n3"].fillna(0) < policy.limit.increase_min_utilisation)
    g = june["guardrails"]
    assert [g[c]["accounts"] for c in ("P08", "P09", "P10")] == [late.sum(), recently.sum(), unused.sum()]
    assert recently.sum() + unused.sum() > 50
    for code, counts in g.items():
        assert sum(counts["limit_action"].values()) == counts["accounts"]
        assert counts["title"] == next(r.title for r in RULES if r.code == code)
        for action, n in counts["limit_action"].items():
            assert n <= (frame["limit_action"] == action).sum(), (code, action)
        if code in ("P08", "P09", "P10"):
            assert "increase" not in counts["limit_action"], "a blocked raise is no raise"
    assert g["P11"]["accounts"] > 0 and g["P03"]["accounts"] > 0
    assert "P09</td>" in Path(june["report"]).read_text()


def test_action_counts_are_compared_with_the_last_run_from_the_same_data_folder(nights, worlds):
    folder, may, june = nights
    assert may["change"] == {"compared_with": None, "note": f"no earlier run from {worlds[0].resolve()} in {folder}"}
    was = june["change"]["compared_with"]
    assert was["manifest"] == str(manifest_path(folder / "may.parquet")) and was["as_of"] == MAY
    before, now = _frame(may), _frame(june)
    counts = june["change"]["counts"]
    for key in ("limit_action", "collection_treatment"):
        b, n = before[key].replace("", "(none)").value_counts(), now[key].replace("", "(none)").value_counts()
        for name in set(b.index) | set(n.index):
            assert counts[key][name] == {"before": b.get(name, 0), "now": n.get(name, 0),
                                         "change": n.get(name, 0) - b.get(name, 0)}, (key, name)
    assert counts["accounts"]["adverse"] == {"before": before["adverse"].sum(), "now": now["adverse"].sum(),
                                             "change": now["adverse"].sum() - before["adverse"].sum()}
    assert counts["accounts"]["scored"]["now"] == len(now)
    assert any(v["change"] for v in counts["limit_action"].values())
    report = Path(june["report"]).read_text()
    assert f"Compared with the run as of {MAY}" in report and str(worlds[0].resolve()) in report


def test_the_last_run_is_beside_previous_or_the_latest_earlier_one_from_the_same_folder(nights, tmp_path):
    folder, _, june = nights
    out = folder / "june.parquet"
    data = june["input"]["data"]
    # --previous FILE: the manifest beside it
    path, manifest, how = last_run(folder / "may.parquet", out, JUNE, data)
    assert path == manifest_path(folder / "may.parquet") and manifest["as_of"] == MAY and "--previous" in how
    path, manifest, how = last_run(tmp_path / "elsewhere.parquet", out, JUNE, data)
    assert path is None and how == f"--previous {tmp_path / 'elsewhere.parquet'} has no readable manifest beside " \
                                   "it (elsewhere.manifest.json)"
    # without it: a later run of another data folder, and a later-dated one, are passed over
    beside = tmp_path / "scores"
    beside.mkdir()
    shutil.copy2(manifest_path(folder / "may.parquet"), beside / "may.manifest.json")
    other = json.loads(manifest_path(folder / "may.parquet").read_text())
    (beside / "other.manifest.json").write_text(json.dumps({**other, "as_of": "2024-06-15",
                                                            "input": {**other["input"], "data": str(tmp_path)}}))
    (beside / "later.manifest.json").write_text(json.dumps({**other, "as_of": "2024-07-31"}))
    (beside / "broken.manifest.json").write_text("{")
    path, manifest, how = last_run(None, beside / "june.parquet", JUNE, data)
    assert path == beside / "may.manifest.json" and manifest["as_of"] == MAY
    assert how == f"the latest earlier run from the same data folder in {beside}"
