"""Drift of a scoring run: the score's PSI and every feature's CSI against the bundle's training reference.

Chunks return histograms on the reference's bins (validation.metrics.bin_counts); the job adds them up and
judges them here, so the figures do not depend on how the accounts were chunked.
"""
from __future__ import annotations

import logging

import numpy as np

from features.catalog import default_catalog
from validation.metrics import drift_level, psi_from_counts

log = logging.getLogger("dynascore.scoring")


def drift_summary(reference: dict, counts: dict[str, np.ndarray]) -> dict:
    """PSI of the score and CSI of every feature against the bundle's training reference, with levels.

    Macro indicators take one value per as-of date, so against a reference spread over many months their
    CSI is large by construction: it is reported, with level 'one value per date', and never alerts.
    """
    macro = {f.name for f in default_catalog() if f.family == "macro"}
    out: dict = {"features": {}}
    for name, c in counts.items():
        ref = reference["score"] if name == "score" else reference["features"][name]
        value = psi_from_counts(ref, c)
        entry = {"psi": round(value, 5), "level": "one value per date" if name in macro else drift_level(value)}
        if name == "score":
            out["score"] = entry
        else:
            out["features"][name] = entry
    out["warning"] = sorted(n for n, e in out["features"].items() if e["level"] == "warning")
    out["alert"] = sorted(n for n, e in out["features"].items() if e["level"] == "alert")
    return out


def log_drift(drift: dict) -> None:
    score = drift.get("score")
    if score and score["level"] != "stable":
        log.warning("score PSI %.3f against the training reference: %s", score["psi"], score["level"])
    for level in ("warning", "alert"):
        if drift[level]:
            worst = sorted(drift[level], key=lambda n: -drift["features"][n]["psi"])[:5]
            log.warning("feature CSI %s (above %s) for %d of %d features, highest: %s; all in the manifest", level,
                        "0.25" if level == "alert" else "0.1", len(drift[level]), len(drift["features"]),
                        ", ".join(f"{n} {drift['features'][n]['psi']:.2f}" for n in worst))
