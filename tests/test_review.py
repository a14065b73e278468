"""The validation pack end to end: a trained model back-tested on score files, the page and its JSON.

The pack's numbers are checked against independent computations on the same rows (scikit-learn's AUC, the
panel's labels, the scoring manifests' PSI), its failures against what it must never do (a traceback, a
half-written output, a finding without its section), and its page in a real browser (tests/browser.py).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.builders import Prepared
from features.labels import build_labels
from review.cli import main
from review.evidence import VARIANT, VARIANT_COLUMN, complete_month_ends, read_scores, variant_outcomes
from review.gather import surveyed
from review.job import ReviewError, ReviewRequest, run
from review.pack import Check, Pack, Section
from scoring.job import ScoreRequest
from scoring.job import run as score
from validation.metrics import psi_from_counts

MONTHS = 3


@pytest.fixture(scope="module")
def review_inputs(baseline_dir, baseline_tables, trained, tmp_path_factory):
    """The session's trained bundle, and the nightly job's score files for the latest complete month ends."""
    root = tmp_path_factory.mktemp("review")
    bundle = trained.bundle.save(root / "bundle")
    book = surveyed(baseline_dir[0], None)
    window = complete_month_ends(book.first_day, book.extraction.day, MONTHS)
    for day in window:
        score(ScoreRequest(baseline_dir[0], root / "scores" / f"scores-{day.date()}.parquet", model=str(bundle),
                           as_of=str(day.date())))
    return baseline_dir[0], bundle, root / "scores", window


@pytest.fixture(scope="module")
def reviewed(review_inputs, tmp_path_factory):
    data, bundle, scores, _ = review_inputs
    out = tmp_path_factory.mktemp("pack") / "review.html"
    html, js, pack = run(ReviewRequest(str(bundle), data, out, scores=scores, months=MONTHS, n_boot=20))
    return html, json.loads(js.read_text()), pack


def pack_rows(pack: Pack) -> pd.DataFrame:
    """The evidence's rows the pack was built from (kept on the pack for tests and notebooks)."""
    return pack.evidence.rows


def test_the_window_is_the_latest_month_ends_whose_default_window_has_ended(baseline_tables):
    prep = Prepared(baseline_tables)
    ends = complete_month_ends(pd.Timestamp(int(prep.first_day), unit="D"), prep.extraction, 4)
    assert len(ends) == 4 and all(e == e + pd.offsets.MonthEnd(0) for e in ends)
    # six months after the last one fit before the extraction date; after the next month end they do not
    assert ends[-1] + pd.DateOffset(months=6) <= prep.extraction
    assert ends[-1] + pd.offsets.MonthEnd(1) + pd.DateOffset(months=6) > prep.extraction - pd.Timedelta(days=1)


def test_every_section_and_the_summary_are_written_with_the_same_numbers_as_json(reviewed):
    html, numbers, pack = reviewed
    text = html.read_text()
    for key in ("summary", "data", "discrimination", "calibration", "stability", "benchmark", "decisions"):
        assert f'id="{key}"' in text, key
    assert set(numbers["sections"]) == {s.key for s in pack.sections}
    assert len(numbers["checks"]) == len(pack.checks) > 20
    # every finding links to the section it was raised in, and is a failed check of that section
    for finding in numbers["findings"]:
        assert f'href="#{finding["section"]}"' in text
        assert any(c["section"] == finding["section"] and c["test"] == finding["test"] and c["passed"] is False
                   for c in numbers["checks"])


def test_the_labels_are_the_panel_s_and_the_pooled_auc_is_scikit_learn_s(review_inputs, reviewed, baseline_tables):
    _, _, scores, window = review_inputs
    _, numbers, _pack = reviewed
    rows = read_scores(sorted(scores.glob("scores-*.parquet")))
    labels = build_labels(baseline_tables, window)
    joined = rows.merge(labels, on=["account_id", "as_of"])
    usable = joined["pd_default"].notna() & joined["default"].notna() & joined["complete_default"]
    pooled = {r["target"]: r for r in numbers["sections"]["discrimination"]["pooled"]}["default"]
    assert pooled["rows"] == int(usable.sum())
    assert pooled["bads"] == int(joined.loc[usable, "default"].sum())
    expected = roc_auc_score(joined.loc[usable, "default"], joined.loc[usable, "pd_default"])
    assert pooled["auc"] == pytest.approx(expected, abs=1e-12)
    assert pooled["lo"] < pooled["auc"] < pooled["hi"] and pooled["boot_lo"] < pooled["auc"] < pooled["boot_hi"]


def test_the_logged_probabilities_replicate_from_the_rebuilt_features(reviewed):
    _, numbers, _ = reviewed
    check = next(c for c in numbers["checks"] if c["test"].startswith("replication"))
    assert check["passed"] is True and check["value"] <= 1e-9
    assert set(numbers["sections"]["benchmark"]["replication"]) == {"default", "early_warning", "self_cure"}


def test_the_benchmark_holds_the_model_against_its_scorecard_and_the_oracle_on_the_same_rows(reviewed):
    _, numbers, _ = reviewed
    diffs = pd.DataFrame(numbers["sections"]["benchmark"]["differences"])
    default = diffs[diffs["target"] == "default"].set_index("against")
    assert {"benchmark scorecard", "Bayes-optimal oracle"} <= set(default.index)
    oracle = default.loc["Bayes-optimal oracle"]
    assert oracle["lo"] <= oracle["difference"] <= oracle["hi"] and oracle["difference"] < 0.02


def test_window_psi_adds_up_the_nights_histograms(review_inputs, reviewed, trained):
    _, _, scores, _ = review_inputs
    _, numbers, _ = reviewed
    psi = {r["name"]: r for r in numbers["sections"]["stability"]["psi"]}
    reference = trained.bundle.reference
    total = {"score": 0, "util_n3": 0}
    for path in sorted(scores.glob("*.manifest.json")):
        m = json.loads(path.read_text())
        day = m["as_of"]
        assert psi["score"][day] == pytest.approx(m["drift"]["score"]["psi"], abs=1e-5)
        assert psi["util_n3"][day] == pytest.approx(m["drift"]["features"]["util_n3"]["psi"], abs=1e-5)
        total["score"] += np.asarray(m["drift"]["score"]["counts"])
        total["util_n3"] += np.asarray(m["drift"]["features"]["util_n3"]["counts"])
    assert psi["score"]["window"] == pytest.approx(psi_from_counts(reference["score"], total["score"]))
    assert psi["util_n3"]["window"] == pytest.approx(psi_from_counts(reference["features"]["util_n3"],
                                                                     total["util_n3"]))


def test_the_default_variant_is_the_panel_s_90_dpd_within_12_months(reviewed, baseline_tables):
    _, _, pack = reviewed
    prep = Prepared(baseline_tables)
    assert VARIANT.default_dpd == 90 and VARIANT.default_months == 12
    # the window's own month ends are within 12 months of the extraction: no variant outcome yet, all counted
    rows = pack_rows(pack)
    assert rows[VARIANT_COLUMN].isna().all()
    assert pack.evidence.exclusions["reason"].str.startswith("default 90+ DPD in 12 months").any()
    # a month end 13 months back has them, and they are the panel's labels under the variant's definition
    early = [prep.extraction - pd.offsets.MonthEnd(13)]
    labels = build_labels(baseline_tables, early, VARIANT)
    joined, _ = variant_outcomes(labels[["account_id", "as_of"]], prep)
    done = labels["complete_default"].to_numpy() & labels["default"].notna().to_numpy()
    assert done.sum() > 1000 and labels.loc[done, "default"].sum() > 0
    np.testing.assert_array_equal(joined.loc[done, VARIANT_COLUMN], labels.loc[done, "default"])


def test_the_same_inputs_give_the_same_json_bytes_whatever_the_chunks_and_workers(review_inputs, reviewed, tmp_path):
    data, bundle, scores, _ = review_inputs
    html, _, _ = reviewed
    again = run(ReviewRequest(str(bundle), data, tmp_path / "again.html", scores=scores, months=MONTHS, n_boot=20,
                              workers=1, chunk_accounts=7_000))[1]
    assert again.read_bytes() == html.with_suffix(".json").read_bytes()


def test_a_window_without_score_files_is_refused_by_name_and_the_previous_pack_stays(review_inputs, tmp_path,
                                                                                  capsys):
    data, bundle, _scores, _window = review_inputs
    out = tmp_path / "review.html"
    out.write_text("the previous pack")
    empty = tmp_path / "no-scores"
    empty.mkdir()
    code = main(["report", "--model", str(bundle), "--data", str(data), "--scores", str(empty), "--out", str(out),
                 "--months", str(MONTHS)])
    err = capsys.readouterr().err
    assert code == 1 and "holds no score file for the window's month ends" in err and "Traceback" not in err
    assert out.read_text() == "the previous pack" and not out.with_suffix(".json").exists()


def test_score_files_of_another_model_are_refused(review_inputs, tmp_path):
    data, bundle, scores, _window = review_inputs
    other = tmp_path / "scores"
    shutil.copytree(scores, other)
    for path in other.glob("*.parquet"):
        frame = pd.read_parquet(path)
        frame["model_version"] = "dynascore/99"
        frame.to_parquet(path)
    with pytest.raises(ReviewError, match="written by dynascore/99"):
        run(ReviewRequest(str(bundle), data, tmp_path / "r.html", scores=other, months=MONTHS, n_boot=20))


def test_a_failed_check_with_a_finding_reaches_the_summary_and_nan_becomes_null():
    s = Section("calibration", "Calibration")
    s.check("grade 3: Jeffreys one-sided", 0.001, "p ≥ 0.01", False, finding=True)
    s.check("Hosmer-Lemeshow", 0.2, "p ≥ 0.01", True)
    s.check("grade 12: Jeffreys one-sided", float("nan"), "p ≥ 0.01", None, note="no rows")
    s.numbers["value"] = np.nan
    pack = Pack("t", {"model": "m"}, [s])
    assert [c.test for _, c in pack.findings] == ["grade 3: Jeffreys one-sided"]
    numbers = pack.numbers()
    assert numbers["sections"]["calibration"]["value"] is None
    assert list(pack.summary_table()["result"]) == ["FAIL", "pass", "not judged"]
    assert isinstance(Check("a", 1.0, "b", True), Check)


def test_the_pack_renders_in_a_browser_with_every_image(reviewed, tmp_path):
    from test_report_browser import check_report_in_browser

    html, _, _ = reviewed
    page = check_report_in_browser(html, tmp_path / "first-screen.png")
    assert page.images_total >= 10 and page.title.startswith("Validation pack")


def test_data_without_ground_truth_say_so_in_one_line_and_nothing_fails(review_inputs, tmp_path):
    data, bundle, scores, _ = review_inputs
    bare = tmp_path / "data"
    bare.mkdir()
    for item in data.iterdir():
        if item.name != "truth":
            (bare / item.name).symlink_to(item)
    html, js, pack = run(ReviewRequest(str(bundle), bare, tmp_path / "r.html", scores=scores, months=MONTHS,
                                       n_boot=20))
    assert not any(c.startswith("oracle_") for c in pack.evidence.rows.columns)
    assert "Not shown: the Bayes-optimal oracle: the data have no synthetic truth" in html.read_text()
    against = {d["against"] for d in json.loads(js.read_text())["sections"]["benchmark"]["differences"]}
    assert against == {"benchmark scorecard"}


def test_a_registered_model_s_pack_is_logged_to_its_training_run(review_inputs, trained, tmp_path):
    import mlflow

    from training.tracking import log_training

    data = review_inputs[0]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logged = log_training(trained, model_name="reviewed", experiment="review", uri=uri)
    # without --scores the review scores the window's month ends itself, through the registry, beside the page
    _, _, pack = run(ReviewRequest("models:/reviewed/1", data, tmp_path / "r.html", months=2, n_boot=20,
                                   tracking_uri=uri, log=True))
    assert len(list((tmp_path / "r-scores").glob("scores-*.parquet"))) == 2
    assert pack.header["mlflow run"] == logged.run_id and pack.header["champion"] == "this model"
    client = mlflow.MlflowClient(uri)
    names = {a.path for a in client.list_artifacts(logged.run_id, "review")}
    assert names == {"review/r.html", "review/r.json"}
    assert client.get_run(logged.run_id).data.metrics["review_findings"] == len(pack.findings)


def test_the_curves_counted_from_ranks_are_the_sorted_ones():
    """ROC and CAP points from tie-block counts (no sort of the rows) equal scikit-learn's ROC and the CAP of
    validation.discrimination."""
    from sklearn.metrics import roc_curve

    from review.figures import tie_block_curves
    from validation.discrimination import cap_points

    rng = np.random.default_rng(3)
    p = np.round(rng.beta(2, 9, 5_000), 3)
    y = (rng.uniform(size=len(p)) < p).astype(float)
    c = tie_block_curves(y, p)
    bads, goods = c["bads"][::-1], c["goods"][::-1]
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(np.concatenate(([0], np.cumsum(goods) / goods.sum())), fpr)
    np.testing.assert_allclose(np.concatenate(([0], np.cumsum(bads) / bads.sum())), tpr)
    x, cap = cap_points(y, p)
    np.testing.assert_allclose(np.concatenate(([0], np.cumsum(bads + goods) / len(y))), x)
    np.testing.assert_allclose(np.concatenate(([0], np.cumsum(bads) / bads.sum())), cap)


def test_score_files_naming_accounts_the_data_lack_are_refused_with_a_count(review_inputs, tmp_path, capsys):
    data, bundle, scores, _ = review_inputs
    other = tmp_path / "scores"
    shutil.copytree(scores, other)
    for path in other.glob("*.parquet"):
        frame = pd.read_parquet(path)
        frame.loc[frame.index[frame["status"] == "active"][:5], "account_id"] += 10**12  # rows the review reads
        frame.to_parquet(path)
    code = main(["report", "--model", str(bundle), "--data", str(data), "--scores", str(other), "--out",
                 str(tmp_path / "r.html"), "--months", str(MONTHS), "--no-log"])
    err = capsys.readouterr().err
    assert code == 1 and "scored rows name accounts that" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_an_unreadable_score_file_is_named_and_nothing_is_written(review_inputs, tmp_path, capsys):
    data, bundle, scores, window = review_inputs
    broken = tmp_path / "scores"
    shutil.copytree(scores, broken)
    (broken / f"scores-{window[-1].date()}.parquet").write_bytes(b"not parquet")
    code = main(["report", "--model", str(bundle), "--data", str(data), "--scores", str(broken), "--out",
                 str(tmp_path / "r.html"), "--months", str(MONTHS), "--no-log"])
    err = capsys.readouterr().err
    assert code == 1 and f"scores-{window[-1].date()}.parquet is not a readable score file" in err
    assert "Traceback" not in err and not (tmp_path / "r.html").exists()


def test_a_group_whose_bads_come_from_one_account_shows_its_auc_without_an_interval():
    from review.ranking import auc_table
    from validation.discrimination import tie_ranks
    from validation.grouped_auc import Ranked

    y = np.array([1, 0, 0, 1, 0, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.4, 0.5, 0.6])
    accounts = np.array([0, 1, 2, 0, 3, 4, 5, 6])  # group 0: both bads are account 0's
    table = auc_table(Ranked.of(y, tie_ranks(p), accounts), np.array([0, 0, 0, 0, 0, 0, 1, 1]), "group")
    first, second = table.iloc[0], table.iloc[1]
    assert first["auc"] == roc_auc_score(y[:6], p[:6]) and np.isnan(first["lo"]) and np.isnan(first["hi"])
    assert second["rows"] == 2 and second["auc"] == 0.0 and np.isnan(second["lo"])  # its bad ranks below its good
