"""The compiled TreeSHAP (models/treeshap.py) against LightGBM's own pred_contrib, raw scores and top reasons."""
from __future__ import annotations

import dataclasses
import functools

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.lgbm_text import feature_names, read_model_text
from models.treeshap import MAX_K, CompiledTrees, compile_booster, compile_text, contributions, predict_raw

BASE = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True, "force_row_wise": True,
        "seed": 7}
TINY = float(np.float32(1e-35))  # LightGBM's zero threshold


def _data(n: int, p: int, seed: int, nan: float = 0.08, zero: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Features with NaNs, exact zeros and discrete columns (many rows sit exactly on a threshold)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, ::3] = np.round(X[:, ::3] * 2)
    X[rng.random((n, p)) < zero] = 0.0
    X[rng.random((n, p)) < nan] = np.nan
    Z = np.nan_to_num(X)
    logit = Z[:, 0] - Z[:, 1] + Z[:, 2] * Z[:, 3] + np.isnan(X[:, 4]) + (X[:, 5] == 0) + np.sin(3 * Z[:, 6])
    return X, (logit + 2 * rng.logistic(size=n) > 0).astype(int)


def _train(params: dict, rounds: int = 30, n: int = 2000, p: int = 12, seed: int = 0, **kw) -> lgb.Booster:
    X, y = _data(n, p, seed, **kw)
    return lgb.train({**BASE, **params}, lgb.Dataset(X, y), rounds)


def _edge_rows(trees: CompiledTrees, n: int, seed: int) -> np.ndarray:
    """Rows whose cells are thresholds, their float neighbours, zeros, NaN, LightGBM's zero band or ordinary."""
    rng = np.random.default_rng(seed)
    X, _ = _data(n, trees.n_features, seed + 1000)
    special = np.array([0.0, -0.0, np.nan, TINY, -TINY, 1.00000001e-35, np.nextafter(TINY, 1), 5e-324,
                        np.inf, -np.inf, 1e300, np.nextafter(1e300, np.inf), -np.nextafter(1e300, np.inf)])
    for f in range(trees.n_features):
        thr = trees.threshold[trees.feature == f]
        cand = np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf), special])
        pick = rng.random(n) < 0.6
        X[pick, f] = rng.choice(cand, pick.sum())
    return X


def _top4(contrib: np.ndarray) -> list[frozenset]:
    """Per row, the features among the 4 largest contributions that are positive (the adverse reasons)."""
    c = contrib[:, :-1]
    idx = np.argsort(-c, axis=1, kind="stable")[:, :4]
    vals = np.take_along_axis(c, idx, axis=1)
    return [frozenset(i[v > 0].tolist()) for i, v in zip(idx, vals, strict=True)]


def _check(booster: lgb.Booster, X: np.ndarray, trees: CompiledTrees | None = None) -> CompiledTrees:
    trees = compile_booster(booster) if trees is None else trees
    ours = contributions(trees, X)
    ref = booster.predict(X, pred_contrib=True)
    assert ours.shape == ref.shape == (len(X), trees.n_features + 1) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    raw = predict_raw(trees, X)
    np.testing.assert_allclose(raw, booster.predict(X, raw_score=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=1), raw, rtol=0, atol=1e-9)
    assert _top4(ours) == _top4(ref)
    pointers = compile_booster(booster, heap_depth=0)  # the other walk of predict_raw gives the same sums
    assert pointers.heap_depth == 0 and np.array_equal(predict_raw(pointers, X), raw)
    _assert_same(compile_text(booster.model_to_string(), trees.max_k, trees.heap_depth), trees)
    return trees


def _assert_same(a: CompiledTrees, b: CompiledTrees) -> None:
    """Every field identical: the model text read without LightGBM compiles to what dump_model() does."""
    for field in dataclasses.fields(CompiledTrees):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), field.name
        else:
            assert x == y, field.name


def test_heap_layout_is_used_for_bounded_trees_and_skipped_for_deep_ones():
    bounded = _train({"num_leaves": 31, "max_depth": 6}, rounds=30, p=12, seed=3)
    trees = compile_booster(bounded)
    assert 1 <= trees.heap_depth <= 6 and trees.heap_feature.shape == (bounded.num_trees(), 2**trees.heap_depth - 1)
    _check(bounded, _edge_rows(trees, 400, seed=4), trees)
    deep, _ = _deep()
    assert compile_booster(deep, heap_depth=4).heap_depth == 0  # deeper than allowed: pointer walk


@functools.cache
def _deep() -> tuple[lgb.Booster, dict[int, CompiledTrees]]:
    """Unbounded leaf-wise trees: paths longer than MAX_K, features repeated along a path."""
    booster = _train({"num_leaves": 63, "max_depth": -1, "min_data_in_leaf": 2, "min_sum_hessian_in_leaf": 0},
                     rounds=20, p=20, seed=5)
    return booster, {mk: compile_booster(booster, max_k=mk) for mk in (0, 3, MAX_K)}


def _path_stats(booster: lgb.Booster) -> tuple[int, int]:
    """Longest path, and the most splits a single path makes on one feature."""
    longest = repeats = 0
    stack = [(t["tree_structure"], ()) for t in booster.dump_model()["tree_info"]]
    while stack:
        node, path = stack.pop()
        if "split_index" in node:
            path = (*path, node["split_feature"])
            stack += [(node["left_child"], path), (node["right_child"], path)]
        elif path:
            longest = max(longest, len(path))
            repeats = max(repeats, max(path.count(f) for f in set(path)))
    return longest, repeats


@pytest.mark.parametrize("params", [
    {"max_depth": 6, "num_leaves": 31},
    {"max_depth": 6, "num_leaves": 31, "zero_as_missing": True},
    {"max_depth": 6, "num_leaves": 31, "use_missing": False},
    {"max_depth": 6, "num_leaves": 31, "monotone_constraints": [1, -1, 0, 0, 1, 0, -1, 0, 0, 1, 0, 0]},
    {"num_leaves": 15, "monotone_constraints": [1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, -1],
     "monotone_constraints_method": "advanced"},
], ids=["nan-default", "zero-as-missing", "no-missing", "monotone", "monotone-advanced"])
def test_matches_lightgbm(params):
    booster = _train(params)
    trees = _check(booster, _data(1500, 12, 1)[0])
    _check(booster, _edge_rows(trees, 1500, 2), trees)


def test_threads_score_row_ranges_to_the_same_sums():
    booster = _train({"max_depth": 6, "num_leaves": 31})
    X = np.tile(_data(1500, 12, 1)[0], (20, 1))  # 30,000 rows: three ranges of at least 10,000
    for trees in (compile_booster(booster), compile_booster(booster, heap_depth=0)):
        one = predict_raw(trees, X)
        assert np.array_equal(predict_raw(trees, X, threads=3), one)
        np.testing.assert_allclose(one, booster.predict(X, raw_score=True), rtol=0, atol=1e-12)


def test_depth_bounded_paths_use_tables_only():
    trees = compile_booster(_train({"max_depth": 6, "num_leaves": 31}))
    assert trees.k.max() <= 6 and (trees.table_start[trees.k > 0] >= 0).all()


def test_long_paths_and_repeated_features():
    booster, compiled = _deep()
    longest, repeats = _path_stats(booster)
    assert compiled[MAX_K].k.max() > MAX_K and longest > compiled[MAX_K].k.max() and repeats >= 3
    X = np.vstack([_data(800, 20, 3)[0], _edge_rows(compiled[MAX_K], 800, 4)])
    for trees in compiled.values():  # max_k 0: every leaf computed directly; 3: a mix
        _check(booster, X, trees)


def test_direct_leaves_on_a_depth_bounded_model():
    booster = _train({"max_depth": 6, "num_leaves": 31})
    trees = compile_booster(booster, max_k=2)
    assert (trees.table_start < 0).any() and (trees.table_start >= 0).any()
    _check(booster, _edge_rows(trees, 500, 5), trees)


def test_single_leaf_trees_go_to_the_bias():
    X, y = _data(2000, 12, 0)
    # too little data for any split: a constant first tree, then ordinary boosting on top of it
    stump = lgb.train({**BASE, "min_data_in_leaf": 50}, lgb.Dataset(X[:60], y[:60]), 1)
    assert stump.dump_model()["tree_info"][0]["num_leaves"] == 1
    booster = lgb.train({**BASE, "max_depth": 6, "num_leaves": 31}, lgb.Dataset(X, y), 20, init_model=stump)
    assert booster.num_trees() == 21
    _check(booster, _data(500, 12, 1)[0])
    only = contributions(compile_booster(stump), X[:5])
    np.testing.assert_allclose(only, stump.predict(X[:5], pred_contrib=True), rtol=0, atol=1e-12)
    assert (only[:, :-1] == 0).all()


def test_model_loaded_from_text_and_best_iteration():
    X, y = _data(2000, 12, 0)
    valid = lgb.Dataset(X[1500:], y[1500:])
    params = {**BASE, "max_depth": 6, "num_leaves": 31, "learning_rate": 0.3}
    booster = lgb.train(params, lgb.Dataset(X[:1500], y[:1500]), 200, valid_sets=[valid],
                        callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True)
    assert 0 < booster.best_iteration < booster.num_trees()
    _check(booster, _data(500, 12, 1)[0])
    loaded = lgb.Booster(model_str=booster.model_to_string())
    _check(loaded, _data(500, 12, 2)[0])


def test_model_text_reads_as_dump_model():
    booster = _train({"max_depth": 6, "num_leaves": 31}, rounds=5)
    text, dump = booster.model_to_string(), booster.dump_model()
    ours = read_model_text(text)
    assert feature_names(text) == ours["feature_names"] == dump["feature_names"]
    assert {k: ours[k] for k in ("max_feature_idx", "objective", "num_class")} == \
        {k: dump[k] for k in ("max_feature_idx", "objective", "num_class")}
    keys = ("split_index", "split_feature", "threshold", "decision_type", "default_left", "missing_type",
            "internal_count", "leaf_index", "leaf_value", "leaf_count")

    def same(a: dict, b: dict) -> None:
        assert {k: a[k] for k in keys if k in a} == {k: b[k] for k in keys if k in b}
        for child in ("left_child", "right_child"):
            if child in b:
                same(a[child], b[child])

    for a, b in zip(ours["tree_info"], dump["tree_info"], strict=True):
        same(a["tree_structure"], b["tree_structure"])
    with pytest.raises(ValueError, match="not a LightGBM model text"):
        read_model_text("{}")


def test_unsupported_models_raise():
    X, y = _data(600, 8, 0)
    Xc = X.copy()
    Xc[:, 1] = np.random.default_rng(0).integers(0, 6, len(X))
    yc = (Xc[:, 1] >= 3).astype(int)
    cat = lgb.train(BASE, lgb.Dataset(Xc, yc, categorical_feature=[1]), 3)
    with pytest.raises(ValueError, match="categorical split"):
        compile_booster(cat)
    with pytest.raises(ValueError, match="categorical split"):
        compile_text(cat.model_to_string())
    linear = lgb.train({**BASE, "linear_tree": True}, lgb.Dataset(np.nan_to_num(X), y), 3)
    with pytest.raises(ValueError, match="linear-tree"):
        compile_booster(linear)
    with pytest.raises(ValueError, match="linear-tree"):
        compile_text(linear.model_to_string())
    multi = lgb.train({**BASE, "objective": "multiclass", "num_class": 3}, lgb.Dataset(X, y + (X[:, 0] > 1)), 3)
    with pytest.raises(ValueError, match="multiclass"):
        compile_booster(multi)
    with pytest.raises(ValueError, match="multiclass"):
        compile_text(multi.model_to_string())
    regression = lgb.train({**BASE, "objective": "regression"}, lgb.Dataset(X, y), 3)
    with pytest.raises(ValueError, match="binary models only"):
        compile_booster(regression)
    with pytest.raises(ValueError, match="binary models only"):
        compile_text(regression.model_to_string())
    with pytest.raises(ValueError, match="max_k"):
        compile_booster(lgb.train(BASE, lgb.Dataset(X, y), 2), max_k=40)


def test_input_layout_and_dtype():
    booster = _train({"max_depth": 6, "num_leaves": 31}, rounds=10)
    trees = compile_booster(booster)
    X = _edge_rows(trees, 300, 6)
    ours = contributions(trees, X)
    assert np.array_equal(contributions(trees, np.asfortranarray(X)), ours, equal_nan=True)
    assert np.array_equal(contributions(trees, X[::-1])[::-1], ours)
    assert np.array_equal(predict_raw(trees, np.asfortranarray(X)), predict_raw(trees, X))
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float32, for LightGBM too
        X32 = X.astype(np.float32)
    _check(booster, X32, trees)


@pytest.mark.parametrize("heap_depth", [0, 6])
def test_rows_are_scored_where_they_lie(heap_depth):
    """Scoring some rows of a larger matrix by index gives what scoring the gathered rows gives, in the
    index's order (repeats allowed), for both walks and any thread count."""
    booster = _train({"max_depth": 6, "num_leaves": 31}, rounds=20)
    trees = compile_booster(booster, heap_depth=heap_depth)
    X = np.asfortranarray(_edge_rows(trees, 40_000, 7))  # the panel's layout: column-major
    rows = np.random.default_rng(3).integers(0, len(X), 25_000)
    gathered = predict_raw(trees, np.ascontiguousarray(X[rows]))
    assert np.array_equal(predict_raw(trees, X, rows=rows), gathered)
    assert np.array_equal(predict_raw(trees, X, threads=2, rows=rows), gathered)
    assert predict_raw(trees, X, rows=np.array([], dtype=np.int64)).shape == (0,)
    with pytest.raises(IndexError, match=r"\[0, 40000\)"):
        predict_raw(trees, X, rows=np.array([0, 40_000]))


def test_wrong_width_is_rejected():
    trees = compile_booster(_train({"num_leaves": 7}, rounds=3))
    with pytest.raises(ValueError, match=r"shape \(n, 12\)"):
        contributions(trees, np.zeros((3, 11)))
    with pytest.raises(ValueError, match=r"shape \(n, 12\)"):
        predict_raw(trees, np.zeros(12))


_CELL = st.one_of(
    st.sampled_from([np.nan, 0.0, -0.0, TINY, -TINY, -1.00000001e-35, np.inf, -np.inf, 1.0000000000000002e300]),
    st.floats(-4, 4, allow_nan=False),
    st.integers(0, 10_000),  # index into the model's thresholds (and their neighbours)
)


@settings(max_examples=250, deadline=None, derandomize=True)
@given(rows=st.lists(st.lists(_CELL, min_size=20, max_size=20), min_size=1, max_size=8),
       max_k=st.sampled_from([0, 3, MAX_K]))
def test_random_rows_property(rows, max_k):
    booster, compiled = _deep()
    trees = compiled[max_k]
    X = np.empty((len(rows), trees.n_features))
    for f in range(trees.n_features):
        thr = trees.threshold[trees.feature == f]
        thr = np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf)]) if thr.size else [0.0]
        X[:, f] = [thr[row[f] % len(thr)] if isinstance(row[f], int) else row[f] for row in rows]
    _check(booster, X, trees)
