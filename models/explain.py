"""The numbers of a model review's explanation section: what a model leans on, whether it keeps the directions
it was trained to keep, and which reasons the adverse decisions gave.

Everything reads the saved artifact: the importances come from the model text's trees (the project's TreeSHAP,
LightGBM's values), the constraints from the model text's own `monotone_constraints` line rather than from the
catalog that declared them, and the sweep scores with the compiled trees the nightly job scores with. Samples
are seeded, so the same review rows give the same tables; each table states the rows it was computed on.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from features.catalog import Catalog, default_catalog
from features.targets import target as declared_target
from models.bundle import TargetModel
from models.calibration import Calibrator
from models.lgbm import sample_rows
from models.lgbm_text import feature_names, model_header
from models.treeshap import CompiledTrees, compile_text, contributions, predict_raw

SEED = 0
IMPORTANCE_ROWS = 20_000
SWEEP_ROWS = 2_000  # 100 features x 20 grid points x 2,000 rows: 4 M predictions
TOLERANCE = 1e-9  # a move against the constraint smaller than this is rounding, not a violation
SLOTS = 4  # reason_1..4 of the scoring output
SWEEP_COLUMNS = ["feature", "constraint", "trained", "grid_points", "rows", "missing_rows", "steps",
                 "raw_violating_rows", "raw_violating_steps", "raw_worst",
                 "calibrated_violating_rows", "calibrated_violating_steps", "calibrated_worst"]


class ExplainError(ValueError):
    """Inputs the explanation cannot be computed on; the message says what to pass instead."""


def importance(model: TargetModel, X: pd.DataFrame, max_rows: int = IMPORTANCE_ROWS, *,
               catalog: Catalog | None = None, seed: int = SEED) -> pd.DataFrame:
    """Per feature: its share of the trees' split gain, and its mean |TreeSHAP| contribution to the log-odds
    (and that mean's share of all features') on a seeded sample of at most `max_rows` of X's rows; most
    influential by |SHAP| first, with the description in `catalog` (the project's by default; "" for a feature
    it lacks)."""
    catalog = default_catalog() if catalog is None else catalog
    names = feature_names(model.text)
    values = _sample(X, names, max_rows, seed)
    mean_abs = np.abs(contributions(compile_text(model.text), values)[:, :-1]).mean(axis=0)
    gain = model.booster.feature_importance(importance_type="gain").astype(np.float64)
    known = set(catalog.names)
    out = pd.DataFrame({
        "feature": names,
        "description": [catalog[n].description if n in known else "" for n in names],
        "gain_share": _shares(gain),
        "mean_abs_shap": mean_abs,
        "shap_share": _shares(mean_abs),
        "rows": len(values),
    })
    return out.sort_values(["mean_abs_shap", "gain_share"], ascending=False, kind="stable").reset_index(drop=True)


def trained_constraints(model: TargetModel) -> dict[str, int]:
    """The monotone constraints the booster was trained with, from its model text (none written: all 0)."""
    names = feature_names(model.text)
    line = model_header(model.text).get("monotone_constraints", "").split()
    if not line:
        return dict.fromkeys(names, 0)
    if len(line) != len(names):
        raise ExplainError(f"the model text of {model.target} has {len(line)} monotone constraints for "
                           f"{len(names)} features: the model file is damaged; restore the bundle")
    return {n: int(c) for n, c in zip(names, line, strict=True)}


def declared_constraints(model: TargetModel, catalog: Catalog) -> dict[str, int]:
    """The constraints training derives from the catalog: each feature's risk direction, reversed for a
    good-outcome target (self-cure), as training/trainer.py sets them."""
    known = set(catalog.names)
    missing = [n for n in feature_names(model.text) if n not in known]
    if missing:
        raise ExplainError(f"the catalog lacks {len(missing)} feature(s) of the {model.target} model "
                           f"({', '.join(missing[:5])}): pass the catalog it was trained with, latent-state "
                           "features included")
    sign = declared_target(model.target).direction
    return {n: sign * catalog[n].risk for n in feature_names(model.text)}


def monotonicity_sweep(model: TargetModel, X: pd.DataFrame, constraints: Mapping[str, int] | None = None,
                       grid: int = 20, max_rows: int = SWEEP_ROWS, *, tolerance: float = TOLERANCE,
                       seed: int = SEED) -> pd.DataFrame:
    """ICE curves of every constrained feature, and the moves against its constraint.

    Each feature with a non-zero constraint (the model text's unless `constraints` are given, e.g.
    `declared_constraints`) is set, in each of a seeded sample of at most `max_rows` rows with every other
    feature as it is, to each of `grid` quantiles of its observed values in the sample. Only observed values
    are swept: NaN is no grid point, for LightGBM sends a missing value down a learned side that no constraint
    orders; a row missing the feature is swept all the same (its NaN replaced by each grid value), and other
    features' NaNs stay as the model sees them. A step between neighbouring grid points violates the constraint
    when the raw score, or the calibrated probability, moves against it by more than `tolerance`; `worst` is
    the largest such move. `trained` is the model text's constraint, to hold a given one against.
    """
    if grid < 2:
        raise ExplainError(f"grid must have at least 2 points to make a step, got {grid}")
    names = feature_names(model.text)
    trained = trained_constraints(model)
    checked = trained if constraints is None else _checked(constraints, names)
    sweep = _Sweep(compile_text(model.text, max_k=0), model.calibrator, _sample(X, names, max_rows, seed), grid)
    rows = []
    for j, name in enumerate(names):
        if checked[name] != 0:
            found = sweep.feature(j, checked[name], tolerance)
            rows.append({"feature": name, "constraint": checked[name], "trained": trained[name], **found})
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


class _Sweep:
    """The sampled rows, each repeated `grid` times, and their scores; `feature` sweeps one column.

    Only the trees that split on the swept feature can move a row's score along its grid: the rest add the
    same to every point, so they are scored once per row (`base` less the splitting trees' part) rather
    than at every grid point: a 100-feature model of 400 trees has 50 trees per feature, 8 times less work.
    """

    def __init__(self, trees: CompiledTrees, calibrator: Calibrator, values: np.ndarray, grid: int) -> None:
        self.trees, self.calibrator, self.values, self.grid = trees, calibrator, values, grid
        self.stacked = np.repeat(values, grid, axis=0)  # row i's grid points: rows i*grid .. i*grid + grid - 1
        self.base = predict_raw(trees, values)
        tree_of_node = np.repeat(np.arange(len(trees.int_start) - 1), np.diff(trees.int_start))
        self.uses = np.zeros((len(trees.int_start) - 1, trees.n_features), dtype=bool)
        self.uses[tree_of_node, trees.feature] = True

    def feature(self, j: int, sign: int, tolerance: float) -> dict:
        """Sweep column j: set to the grid in the repeated rows, scored in one call, then put back.

        A feature of few distinct values (a count) has fewer distinct quantiles than `grid`: only those are
        scored, in the first of each row's repeats (predict_raw reads the rows where they lie)."""
        column, n = self.values[:, j], len(self.values)
        observed = column[~np.isnan(column)]
        if observed.size == 0:
            return _no_sweep(n)
        points = np.unique(np.quantile(observed, np.linspace(0.0, 1.0, self.grid), method="inverted_cdf"))
        g = len(points)
        at = (np.arange(n)[:, None] * self.grid + np.arange(g)).ravel()
        splitting = self._trees_using(j)
        self.stacked[at, j] = np.tile(points, n)
        moving = predict_raw(splitting, self.stacked, threads=2, rows=at).reshape(n, g)
        self.stacked[at, j] = np.repeat(column, g)
        raw = (self.base - predict_raw(splitting, self.values))[:, None] + moving
        probability = self.calibrator.transform(1.0 / (1.0 + np.exp(-raw)))
        found = {"grid_points": g, "rows": n, "missing_rows": n - observed.size, "steps": n * (g - 1)}
        for kind, scores in (("raw", moving), ("calibrated", probability)):
            against = -sign * np.diff(scores, axis=1)  # > 0 where the score moves against the constraint
            bad = against > tolerance
            found |= {f"{kind}_violating_rows": int(bad.any(axis=1).sum()),
                      f"{kind}_violating_steps": int(bad.sum()), f"{kind}_worst": float(against.max(initial=0.0))}
        return found

    def _trees_using(self, j: int) -> CompiledTrees:
        """The trees that split on feature j, for predict_raw's heap walk (the layout of trees at most
        MAX_HEAP_DEPTH deep, the project's); a model without it is scored whole."""
        if not self.trees.heap_depth:
            return self.trees
        keep = self.uses[:, j]
        return replace(self.trees, heap_feature=self.trees.heap_feature[keep],
                       heap_threshold=self.trees.heap_threshold[keep], heap_nan_left=self.trees.heap_nan_left[keep],
                       heap_zero_left=self.trees.heap_zero_left[keep], heap_value=self.trees.heap_value[keep])


def _no_sweep(n: int) -> dict:
    """A feature missing in every sampled row has no observed value to sweep."""
    return {"grid_points": 0, "rows": n, "missing_rows": n, "steps": 0,
            **{f"{k}_{m}": 0 for k in ("raw", "calibrated") for m in ("violating_rows", "violating_steps")},
            "raw_worst": 0.0, "calibrated_worst": 0.0}


def reason_frequencies(frame: pd.DataFrame) -> pd.DataFrame:
    """How often each reason code was given to the adverse rows of a scoring output: as the first reason and in
    any of reason_1..4 (a row counted once per code), each as a share of the adverse rows (`adverse`), most
    frequent first, with the text given with it most often (texts carry each row's own value)."""
    codes, texts = [f"reason_{i}" for i in range(1, SLOTS + 1)], [f"reason_text_{i}" for i in range(1, SLOTS + 1)]
    absent = [c for c in ["adverse", *codes, *texts] if c not in frame.columns]
    if absent:
        raise ExplainError(f"the frame lacks {', '.join(absent)}: pass the nightly scoring output "
                           "(scoring/output.py SCHEMA)")
    adverse = np.asarray(frame["adverse"].astype("boolean").fillna(False), dtype=bool)
    reason, vocabulary = _word_codes(frame.loc[adverse, codes])  # (rows x slots), -1 where none is given
    text, texts_seen = _word_codes(frame.loc[adverse, texts])
    n, k = len(reason), len(vocabulary)
    # a row counts once per code: a slot counts where no earlier slot of the row gave the same code
    new = reason >= 0
    for j in range(1, SLOTS):
        new[:, j] &= (reason[:, :j] != reason[:, [j]]).all(axis=1)
    rows = np.bincount(reason[new], minlength=k)
    first = np.bincount(reason[:, 0][reason[:, 0] >= 0], minlength=k)
    # the text given with each code most often (ties: the first in sorted order, a missing text last)
    given = reason >= 0
    pair = reason[given] * (len(texts_seen) + 1) + np.where(text[given] < 0, len(texts_seen), text[given])
    counts = np.bincount(pair, minlength=k * (len(texts_seen) + 1)).reshape(k, len(texts_seen) + 1)
    words = np.append(np.asarray(texts_seen, dtype=object), None)
    out = pd.DataFrame({"reason": vocabulary, "rows": rows, "first": first})
    out["share"] = out["rows"] / max(n, 1)
    out["first_share"] = out["first"] / max(n, 1)
    out["adverse"] = n
    out["text"] = words[counts.argmax(axis=1)] if k else []
    out = out[out["rows"] > 0]
    return out.sort_values(["rows", "first", "reason"], ascending=[False, False, True], kind="stable",
                           ignore_index=True)


def _word_codes(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The columns' words as codes into their sorted union (-1 for a missing or empty word): categorical
    columns through their categories, never row by row."""
    columns = [frame[c] if isinstance(frame[c].dtype, pd.CategoricalDtype) else frame[c].astype("category")
               for c in frame.columns]
    vocabulary = sorted({w for c in columns for w in c.cat.categories if isinstance(w, str) and w})
    at = {w: i for i, w in enumerate(vocabulary)}
    out = np.empty((len(frame), len(columns)), np.int64)
    for j, c in enumerate(columns):
        recode = np.array([at.get(w, -1) if isinstance(w, str) else -1 for w in c.cat.categories] + [-1], np.int64)
        out[:, j] = recode[c.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
    return out, vocabulary


def _sample(X: pd.DataFrame, names: list[str], max_rows: int, seed: int) -> np.ndarray:
    """A seeded sample of at most `max_rows` of X's rows, in their order, as the model's float64 matrix."""
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ExplainError(f"the review rows lack {len(missing)} feature(s) the model reads "
                           f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): build them with the "
                           "catalog version the bundle was trained with")
    if len(X) == 0 or max_rows < 1:
        raise ExplainError(f"nothing to explain on: {len(X)} review rows, max_rows={max_rows}")
    rows = sample_rows(np.arange(len(X)), max_rows, seed)
    return np.ascontiguousarray(X[names].iloc[rows].to_numpy(np.float64))


def _checked(constraints: Mapping[str, int], names: list[str]) -> dict[str, int]:
    """Given constraints for the model's features: -1, 0 or +1; a feature left out is unconstrained."""
    unknown = sorted(set(constraints) - set(names))
    wrong = sorted(n for n, c in constraints.items() if c not in (-1, 0, 1))
    if unknown or wrong:
        raise ExplainError("constraints must map the model's features to -1, 0 or +1: "
                           + "; ".join([*([f"not features of the model: {', '.join(unknown[:5])}"] if unknown else []),
                                        *([f"not -1, 0 or +1: {', '.join(wrong[:5])}"] if wrong else [])]))
    return {n: int(constraints.get(n, 0)) for n in names}


def _shares(x: np.ndarray) -> np.ndarray:
    total = x.sum()
    return x / total if total > 0 else np.zeros_like(x)
