"""Reason texts a customer service agent can read out, and the features that are never a reason.

Every catalog feature that may be a reason is rendered for representative values of its unit (indicators,
zero, one, fractions, large values, missing) and checked for what made the old texts unreadable: a raw
"(1) or not (0)", a feature's name, a value with more decimals than its unit shows, "1 days". The scored
sample (tests/test_scoring.py) checks that the features declared `NotAReason` never appear in the job's output.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from features.catalog import NotAReason, Reason, default_catalog
from models.latent_state import LatentStateFilter, with_latent
from models.reasons import describe, eligible, text, top_adverse

CATALOG = with_latent(default_catalog(), LatentStateFilter())  # the filter's features read the same way
NO_REASON = {"limit_now", "limit_changes_d360", "limit_ratio_d360", "is_installment", "grace_days", "income_band",
             "days_since_due", "macro_stress_index", "macro_unemployment_rate", "calendar_month"} | \
    {f"latent_class{k}" for k in range(3)} | {f"latent_state{s}" for s in range(4)}
VALUES = {
    "yes/no": [0.0, 1.0],
    "count": [0.0, 1.0, 2.0, 7.0, 36.0, 12_345.0],
    "days": [0.0, 0.04, 1.0, 1.5, 2.25, 2.96, 30.0, 723.0, 88_972.0],
    "share": [0.0, 0.004, 0.3333, 0.95, 0.996, 1.0, 3.6345],
    "points": [-0.3, -0.004, 0.0, 0.01, 0.125],
    "amount": [0.0, 0.004, 0.37, 9.999, 12.345, 1_496.18954, 88_972.01, 1e7],
}
DECIMALS = {"yes/no": 0, "count": 0, "days": 1, "share": 0, "points": 0, "amount": 2}
RAW = re.compile(r"\(1\)|\(0\)| or not |\bnan\b|\binf\b|missing|None|not known|[{}\[\]|_]|\bT\b|: -?\d")
NUMBER = re.compile(r"\d[\d,]*(?:\.(\d+))?")
UNITS = "day|bill|statement|point|account|installment|loan"
ONE_PLURAL = re.compile(rf"(?<![\d.,])1 (?:cash loan )?(?:{UNITS})s\b|(?<![\d.,])1 of the last \d+ \w+ were")
MANY_SINGULAR = re.compile(rf"(?<![\d.,])(?:[02-9]|\d[\d,.]+) (?:cash loan )?(?:{UNITS})\b(?!s)")


def readable(sentence: str, unit: str) -> list[str]:
    """What is wrong with a reason sentence (nothing: an empty list)."""
    problems = []
    if not sentence or sentence != sentence.strip() or "  " in sentence:
        problems.append("empty or badly spaced")
    if RAW.search(sentence):
        problems.append(f"raw or unfinished wording {RAW.search(sentence).group(0)!r}")
    for m in NUMBER.finditer(sentence):
        if m.group(1) and len(m.group(1)) > DECIMALS[unit]:
            problems.append(f"{m.group(0)} has more than {DECIMALS[unit]} decimals")
    if ONE_PLURAL.search(sentence) or MANY_SINGULAR.search(sentence):
        problems.append("singular and plural mixed up")
    return problems


def reasons():
    return [f for f in CATALOG if f.may_be_reason]


def test_the_check_finds_what_was_wrong_with_the_old_texts():
    old = {"the newest bill was paid before its due date (1) or not (0): 0": "yes/no",
           "statement amount over limit, newest statement: 0.96": "share",
           "days late, mean over the last 36 bills (0 for bills paid on time): 24.33": "days",
           "util_n3 minus util_n12: rising use of the line: missing": "points",
           "a cash loan's installments still to fall due after T": "count",
           "penalty interest of 12.3456": "amount", "1 days past due now": "days", "3 bill was late": "count"}
    for sentence, unit in old.items():
        assert readable(sentence, unit), sentence


@pytest.mark.parametrize("feature", reasons(), ids=lambda f: f.name)
def test_every_feature_that_may_be_a_reason_reads_as_a_sentence_with_its_value_for_people(feature):
    assert isinstance(feature.reason, Reason), f"{feature.name} declares no reason sentence"
    unit = feature.reason.unit
    for value in VALUES[unit]:
        if value < 0 and feature.reason.negative is None:
            continue  # a value the feature never takes
        sentence = text(feature, value)
        assert readable(sentence, unit) == [], (feature.name, value, sentence)
    nan = np.array([[np.nan]])
    if feature.reason.missing is None:
        assert not eligible(nan, [feature.name], CATALOG).any(), "a missing value with no sentence is no reason"
    else:
        assert eligible(nan, [feature.name], CATALOG).all()
        assert readable(text(feature, np.nan), unit) == [], (feature.name, text(feature, np.nan))


def test_values_are_formatted_for_people():
    c = default_catalog()
    assert text(c["early_n1"], 0.0) == "the newest bill was not paid before its due date"
    assert text(c["lag1_n12"], 3.0) == "3 of the last 12 bills were paid exactly 1 day late"
    assert text(c["lag1_n12"], 1.0) == "1 of the last 12 bills was paid exactly 1 day late"
    assert text(c["lag1_n12"], 0.0) == "none of the last 12 bills was paid exactly 1 day late"
    assert text(c["lag2_d90"], 1.0) == "1 bill due in the last 90 days was paid exactly 2 days late"
    assert text(c["util_n1"], 0.9512) == "the newest statement used 95 % of the credit limit"
    assert text(c["util_trend"], -0.125) == ("use of the credit limit fell by 12 percentage points (the last 3 "
                                            "statements against the last 12)")
    assert text(c["dpd_now"], 1.0) == "1 day past due now"
    assert text(c["depth_mean_n36"], 24.3333) == "24.3 days late on average over the last 36 bills"
    assert text(c["depth_mean_n36"], 0.02) == "less than 0.1 days late on average over the last 36 bills"
    assert text(c["balance_now"], 88_972.0149) == "an unpaid balance of 88,972"
    assert text(c["penalty_d360"], 0.374) == "penalty interest of 0.37 on bills due in the last 360 days"
    assert text(c["bills_since_late"], -1.0) == "no bill has been late"
    assert text(c["worst_dpd_n12"], np.nan) == "no bill has fallen due yet"


def test_the_features_that_are_never_a_reason_are_declared_once_with_why():
    assert {f.name for f in CATALOG if not f.may_be_reason} == NO_REASON
    for f in CATALOG:
        assert isinstance(f.reason, Reason | NotAReason), f"{f.name}: declare a Reason or NotAReason"
        if isinstance(f.reason, NotAReason):
            assert "not the customer's conduct" in f.reason.why or "customer" in f.reason.why


def test_rewording_a_reason_changes_neither_a_fingerprint_nor_the_catalog_version():
    catalog = default_catalog()
    reworded = dataclasses.replace(catalog, features=tuple(
        dataclasses.replace(f, reason=Reason("reworded {value}")) if f.may_be_reason else f for f in catalog))
    assert reworded.fingerprints() == catalog.fingerprints()
    assert reworded.version == catalog.version


def test_the_reasons_are_the_largest_allowed_contributions_and_an_excluded_one_is_refused():
    names = ["limit_now", "late_n6", "income_band", "util_n1", "days_since_late", "tenure_days"]
    values = np.array([[5000.0, 2.0, 1.0, 0.9, np.nan, 400.0],
                       [5000.0, 0.0, 1.0, np.nan, 30.0, 400.0]])
    contrib = np.array([[3.0, 1.0, 2.5, 0.5, 0.8, -0.1],
                        [3.0, -1.0, 2.5, 0.9, 0.2, 0.1]])
    everything = top_adverse(contrib, 4)[0]
    assert everything.tolist() == [[0, 2, 1, 4], [0, 2, 3, 4]]
    idx = top_adverse(contrib, 4, eligible(values, names, default_catalog()))[0]
    # the limit and the income band are no reason; nor is a never-late account's missing days_since_late, nor a
    # cash loan's missing utilisation: the next allowed contributions move up
    assert idx.tolist() == [[1, 3, -1, -1], [4, 5, -1, -1]]
    codes, texts = describe(idx, values, names, default_catalog())
    assert codes[0, 0] == f"R{default_catalog().names.index('late_n6') + 1:02d}" and codes[0, 2] == ""
    assert texts[0, :2].tolist() == ["2 of the last 6 bills were late (paid late or still unpaid)",
                                     "the newest statement used 90 % of the credit limit"]
    assert texts[1, :2].tolist() == ["the last late bill fell due 30 days ago", "the account was opened 400 days ago"]
    with pytest.raises(ValueError, match="limit_now is no adverse reason"):
        describe(everything, values, names, default_catalog())
