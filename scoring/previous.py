"""The previous cycle's scores, for score adjustments, and the last run's counts, for the night's changes.

Without `--previous` the job recomputes the score as of one policy cycle earlier from the same data (one
more as-of date in the same feature pass); with it, the file is checked (ids, dates, one score per account)
and each chunk receives the slice of its accounts. The run report compares tonight's action counts with
the last run's manifest (`last_run`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.builders import to_days
from features.contract import ContractError, read_table
from policy.config import Policy
from scoring.chunks import Portfolio
from scoring.errors import ScoreError, day_text
from scoring.output import DATA_FOLDER, manifest_path, origin, read_manifest


def previous_cycle(request, policy: Policy, as_of: int, portfolio: Portfolio):
    """(day to recompute, ids, scores, description): the previous cycle's scores, from a file or recomputed."""
    if request.previous is None:
        stamp = pd.Timestamp(np.datetime64(as_of, "D"))
        prev = stamp - pd.DateOffset(months=policy.score.cycle_months)
        if stamp.is_month_end:
            prev = prev + pd.offsets.MonthEnd(0)
        day = int(to_days(np.array([prev.to_datetime64()]))[0])
        first = int(to_days(np.array([portfolio.first_day.to_datetime64()]))[0])
        if day < first:
            return None, None, None, {"source": "none", "reason": f"{day_text(day)} is before any data"}
        return day, None, None, {"source": "recomputed", "as_of": day_text(day)}
    path = Path(request.previous)
    if not path.exists():
        raise ScoreError(f"--previous {path} does not exist: pass last cycle's output, or leave it out to "
                         "recompute the previous score")
    try:
        frame = read_table(path, "previous")
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    lacking = [c for c in ("account_id", "score") if c not in frame.columns]
    if lacking:
        raise ScoreError(f"--previous {path} lacks column(s) {', '.join(lacking)}: pass an output of score.py")
    ids = pd.to_numeric(frame["account_id"], errors="coerce").to_numpy(np.float64)
    bad = np.isnan(ids)
    if bad.any():
        raise ScoreError(f"{path}: column account_id has {bad.sum()} empty or non-numeric value(s) "
                         f"(rows {', '.join(map(str, np.flatnonzero(bad)[:3]))})")
    ids = ids.astype(np.int64)
    if "as_of" in frame:
        when = pd.to_datetime(frame["as_of"], errors="coerce")
        late = (when >= pd.Timestamp(np.datetime64(as_of, "D"))).to_numpy()
        if late.any():
            raise ScoreError(f"{path}: column as_of has {late.sum()} row(s) on or after the as-of date "
                             f"{day_text(as_of)} (rows {', '.join(map(str, np.flatnonzero(late)[:3]))}): the previous "
                             "scores must come from an earlier cycle")
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        raise ScoreError(f"{path}: column account_id repeats {dup.sum()} account(s) (e.g. "
                         f"{', '.join(map(str, ids[dup][:3]))}): one previous score per account")
    unknown = ~np.isin(ids, portfolio.account_id)
    if unknown.any():
        raise ScoreError(f"{path}: {unknown.sum()} of {len(ids)} account(s) are not in {request.data} (e.g. "
                         f"account_id {', '.join(map(str, ids[unknown][:3]))}): the previous scores are for other "
                         "accounts; pass the previous output of this portfolio")
    order = np.argsort(ids)
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(np.float64)[order]
    return None, ids[order], scores, {"source": str(path), "rows": len(ids)}


def slice_of(ids: np.ndarray | None, scores: np.ndarray | None, lo: int, hi: int):
    if ids is None:
        return None, None
    a, b = np.searchsorted(ids, [lo, hi])
    return ids[a:b], scores[a:b]


# ---------------------------------------------------------------------------------------------- the last run

# the counts compared with the last run: the manifest's rows by category, and flags
COMPARED = {"limit_action": "limit actions", "collection_treatment": "collection treatments"}
COMPARED_FLAGS = ("scored", "early_warning", "adverse")


def last_run(previous: Path | None, out: Path, as_of: str, data: str) -> tuple[Path | None, dict | None, str]:
    """The manifest to compare tonight's counts with: (its path, the manifest, how it was chosen), or
    (None, None, why there is none).

    With --previous FILE, FILE's manifest beside it. Without, the manifest in the output's folder with the
    latest as-of date before tonight's among those written from the same data folder: counts of another
    portfolio say nothing about this one's night.
    """
    if previous is not None:
        path = manifest_path(Path(previous))
        manifest = read_manifest(path)
        if manifest is None:
            return None, None, f"--previous {previous} has no readable manifest beside it ({path.name})"
        return path, manifest, "the manifest beside --previous"
    found = []
    for path in out.parent.glob("*.manifest.json"):
        manifest = read_manifest(path)
        if manifest is None or path == manifest_path(out):
            continue
        if origin(manifest).get(DATA_FOLDER) == data and str(manifest.get("as_of", "")) < as_of:
            found.append((str(manifest["as_of"]), path.name, path, manifest))
    if not found:
        return None, None, f"no earlier run from {data} in {out.parent}"
    _, _, path, manifest = max(found, key=lambda f: f[:2])
    return path, manifest, f"the latest earlier run from the same data folder in {out.parent}"


def count_changes(now: dict, before: dict) -> dict:
    """Counts of tonight's manifest against an earlier one's: {group: {name: {now, before, change}}}."""
    def pairs(a: dict, b: dict) -> dict:
        return {k: {"now": int(a.get(k, 0)), "before": int(b.get(k, 0)), "change": int(a.get(k, 0)) - int(b.get(k, 0))}
                for k in sorted(set(a) | set(b))}

    rows, old = now["rows"], before.get("rows", {})
    return {**{key: pairs(rows.get(key, {}), old.get(key, {})) for key in COMPARED},
            "accounts": pairs({k: rows.get(k, 0) for k in COMPARED_FLAGS}, {k: old.get(k, 0) for k in COMPARED_FLAGS})}


def day_over_day(previous: Path | None, out: Path, manifest: dict) -> dict:
    """The manifest's `change` section: what tonight's counts are compared with, and the changes."""
    path, before, how = last_run(previous, out, manifest["as_of"], manifest["input"]["data"])
    if before is None:
        return {"compared_with": None, "note": how}
    return {"compared_with": {"manifest": str(path), "how": how, "as_of": before.get("as_of"),
                              "data": before.get("input", {}).get("data"),
                              "model": before.get("model", {}).get("version"),
                              "policy": before.get("policy", {}).get("hash")},
            "counts": count_changes(manifest, before)}

