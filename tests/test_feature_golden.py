"""Pinned feature values: a change of code that moves a feature's values must bump its `semantics` version.

A fixed world (tests/golden_world.py) is built at a few as-of dates; each feature's column is pinned in
tests/golden/feature_values.json as a digest (SHA-256 of its float64 bytes, NaN canonical, with its NaN count
and sum to read), keyed by the feature's name and fingerprint. The test fails, naming the feature, when its
values move while its fingerprint stays: bump `semantics` in features/catalog.py if the change is meant.
A new fingerprint (a changed declaration or a bumped semantics) asks for the file to be written again:

    GOLDEN_WRITE=1 python -m pytest tests/test_feature_golden.py
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from golden_world import AS_OF, golden_frames, world_digest

from features.builders import build_features
from features.catalog import default_catalog
from features.contract import validate

GOLDEN = Path(__file__).resolve().parent / "golden" / "feature_values.json"
REGENERATE = "GOLDEN_WRITE=1 python -m pytest tests/test_feature_golden.py"


def _digest(values: np.ndarray) -> dict:
    canonical = np.where(np.isnan(values), np.nan, values).astype(np.float64)  # one NaN bit pattern
    return {"sha256": hashlib.sha256(canonical.tobytes()).hexdigest()[:16], "nan": int(np.isnan(values).sum()),
            "sum": float(f"{np.nansum(values):.10g}")}


def current() -> dict:
    frames = golden_frames()
    catalog = default_catalog()
    features = build_features(validate(frames), list(AS_OF), catalog)
    return {"world": world_digest(frames), "as_of": list(AS_OF), "rows": len(features),
            "features": {f.name: {"fingerprint": f.fingerprint, **_digest(features[f.name].to_numpy(np.float64))}
                         for f in catalog}}


def _problems(pinned: dict, now: dict) -> list[str]:
    out = []
    for name, feature in now["features"].items():
        old = pinned["features"].get(name)
        if old is None:
            out.append(f"{name}: not pinned yet; write the file again ({REGENERATE})")
        elif old["fingerprint"] != feature["fingerprint"]:
            out.append(f"{name}: its declaration or semantics version changed (fingerprint {old['fingerprint']} -> "
                       f"{feature['fingerprint']}); write the file again ({REGENERATE})")
        elif old != feature:
            out.append(f"{name}: values changed under the same fingerprint {feature['fingerprint']} (NaN "
                       f"{old['nan']} -> {feature['nan']}, sum {old['sum']} -> {feature['sum']}): bump its semantics "
                       f"in features/catalog.py if the change is meant, then write the file again ({REGENERATE})")
    out += [f"{name}: pinned but no longer in the catalog; write the file again ({REGENERATE})"
            for name in sorted(set(pinned["features"]) - set(now["features"]))]
    return out


@pytest.fixture(scope="module")
def now() -> dict:
    return current()


def test_feature_values_move_only_with_their_fingerprint(now):
    if os.environ.get("GOLDEN_WRITE"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(GOLDEN.read_text())
    assert pinned["world"] == now["world"], (
        f"the golden world itself changed (tests/golden_world.py or numpy's generator): check that no feature "
        f"moved in the same change, then write the file again ({REGENERATE})")
    assert (pinned["as_of"], pinned["rows"]) == (now["as_of"], now["rows"]), f"write the file again ({REGENERATE})"
    problems = _problems(pinned, now)
    assert not problems, "pinned feature values:\n" + "\n".join(problems)


def test_a_moved_value_is_named_and_a_semantics_bump_asks_for_new_pins(now):
    moved = json.loads(json.dumps(now))
    moved["features"]["lag1_n3"]["sha256"] = "0" * 16
    assert [p.split(":")[0] for p in _problems(moved, now)] == ["lag1_n3"]
    assert "bump its semantics" in _problems(moved, now)[0]
    feature = default_catalog()["lag1_n3"]
    bumped = dataclasses.replace(feature, semantics=2)
    assert bumped.fingerprint != feature.fingerprint
    assert _problems(now, {**now, "features": {**now["features"], "lag1_n3": {
        **now["features"]["lag1_n3"], "fingerprint": bumped.fingerprint}}})[0].startswith("lag1_n3: its declaration")
    described = dataclasses.replace(feature, description="reworded", family="other")
    assert described.fingerprint == feature.fingerprint
