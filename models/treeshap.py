"""Exact TreeSHAP for LightGBM binary models, compiled with numba: reason codes for the nightly batch.

LightGBM's `predict(pred_contrib=True)` is too slow for a million accounts; this gives the same values from
per-leaf tables precomputed once per model (the Fast TreeSHAP v2 idea), so a row costs one pass over each
tree's splits plus one table look-up per leaf and feature on its path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from models.lgbm_text import read_model_text

if TYPE_CHECKING:  # LightGBM is needed to compile a model, not to apply one
    import lightgbm as lgb

MAX_HEAP_DEPTH = 12  # deeper trees are walked by pointers: a heap holds 2**depth nodes per tree
MAX_K = 12  # leaves with more distinct features on their path are computed directly, not from a table
_MAX_TABLE_K = 20  # a table holds 2**k values; beyond this its memory is not worth it
_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold is the float literal 1e-35f
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True, eq=False)
class CompiledTrees:
    """A LightGBM binary model as flat arrays plus per-leaf TreeSHAP tables; see `compile_booster`.

    Internal nodes of tree t are `int_start[t]:int_start[t+1]` in pre-order (a parent before its children),
    its leaves `leaf_start[t]:leaf_start[t+1]`. A child is a local slot: an internal node's local index, or
    the number of the tree's internal nodes plus the leaf's local index.
    """

    n_features: int
    max_k: int
    bias: float  # sum over trees of the tree's expected value: the last contributions column
    int_start: np.ndarray  # int64 [T+1]
    leaf_start: np.ndarray  # int64 [T+1]
    feature: np.ndarray  # int64 [I] split feature
    threshold: np.ndarray  # float64 [I]
    missing: np.ndarray  # int64 [I] 0 None, 1 Zero, 2 NaN
    default_left: np.ndarray  # int64 [I] 1 when missing values go left
    left: np.ndarray  # int64 [I] child slot
    right: np.ndarray  # int64 [I] child slot
    clear: np.ndarray  # int64 [I] bit of the split feature's position on the path (0 beyond bit 61)
    node_pos: np.ndarray  # int64 [I] position of the split feature among its path's distinct features
    value: np.ndarray  # float64 [L] leaf output
    k: np.ndarray  # int64 [L] distinct features on the leaf's path
    pos_start: np.ndarray  # int64 [L+1] the leaf's positions in path_feature / path_zero / ratio
    path_feature: np.ndarray  # int64 [P] feature at each path position
    path_zero: np.ndarray  # float64 [P] product of cover ratios of the path's splits on that feature
    ratio: np.ndarray  # float64 [P] (1 - z) / z: scales a table value where the row agrees with the path
    table_start: np.ndarray  # int64 [L] offset of the leaf's 2**k table; -1 = computed directly
    table: np.ndarray  # float64: v * sum_{S in B} w(|S|) prod_{d not in S} z_d for each agree-set B
    walk_start: np.ndarray  # int64 [L+1] path of directly computed leaves in walk_node / walk_left
    walk_node: np.ndarray  # int64 local internal node on the path
    walk_left: np.ndarray  # int64 1 when the path goes left there
    # the same trees as complete binary heaps of one depth D (padded nodes always go left): a branch-free,
    # fixed-length walk for predict_raw, ~2x faster than following pointers; D = 0 when not built. Missing
    # values are folded into two flags per node, so the walk makes one comparison and no test of types.
    heap_depth: int = 0
    heap_feature: np.ndarray | None = None  # int32 [T, 2**D - 1]
    heap_threshold: np.ndarray | None = None  # float64 [T, 2**D - 1]
    heap_nan_left: np.ndarray | None = None  # bool [T, 2**D - 1]: where a NaN goes
    heap_zero_left: np.ndarray | None = None  # bool [T, 2**D - 1]: where a zero goes (read when heap_zero_missing)
    heap_zero_missing: bool = False  # some split treats zero as missing (LightGBM's zero_as_missing)
    heap_value: np.ndarray | None = None  # float64 [T, 2**D]


def compile_booster(booster: lgb.Booster, max_k: int = MAX_K, heap_depth: int = MAX_HEAP_DEPTH) -> CompiledTrees:
    """`compile_model` of `booster.dump_model()`: its best iteration, as `predict` uses."""
    return compile_model(booster.dump_model(), max_k, heap_depth)


def compile_text(text: str, max_k: int = MAX_K, heap_depth: int = MAX_HEAP_DEPTH) -> CompiledTrees:
    """`compile_model` of a LightGBM model text (all its trees), read without importing LightGBM."""
    return compile_model(read_model_text(text), max_k, heap_depth)


def compile_model(model: dict, max_k: int = MAX_K, heap_depth: int = MAX_HEAP_DEPTH) -> CompiledTrees:
    """Flatten a dumped model (`Booster.dump_model()`'s form) and precompute the leaf tables.

    A leaf with k <= max_k distinct features on its path gets a table of 2**k floats; longer paths are
    computed directly per row (O(k^3)), exact all the same. Trees no deeper than `heap_depth` are also laid
    out as complete heaps for predict_raw (0: never; deeper models use the pointer walk).
    """
    if not 0 <= max_k <= _MAX_TABLE_K:
        raise ValueError(f"max_k must be in [0, {_MAX_TABLE_K}], got {max_k}")
    _check_model(model)
    flat = _Flattener(max_k)
    for tree in model["tree_info"]:
        flat.add_tree(tree["tree_structure"])
    trees = flat.compiled(n_features=int(model["max_feature_idx"]) + 1)
    _build_tables(trees.k, trees.pos_start, trees.path_zero, trees.value, trees.table_start, trees.table)
    return _with_heaps(trees, heap_depth)


class _Flattener:
    """Collects the trees of a dumped model into the flat lists behind `CompiledTrees`, one tree at a time.

    Each list is named after the `CompiledTrees` field it becomes; the `*_start` lists hold offsets, so a
    tree's or leaf's entries are found without per-tree objects once the lists are arrays.
    """

    def __init__(self, max_k: int) -> None:
        self.max_k = max_k
        self.feature, self.threshold, self.missing, self.default_left = [], [], [], []
        self.left, self.right, self.node_pos = [], [], []
        self.value, self.k, self.path_feature, self.path_zero = [], [], [], []
        self.pos_start, self.table_start = [0], []
        self.walk_start, self.walk_node, self.walk_left = [0], [], []
        self.int_start, self.leaf_start = [0], [0]
        self.bias = 0.0
        self.n_table = 0  # floats the leaf tables need so far

    def add_tree(self, root: dict) -> None:
        """Append one tree and add its expected value to the bias."""
        if "split_index" not in root:  # a single leaf: a constant, all of it bias
            self._leaf(float(root["leaf_value"]), (), (), ())
            self.bias += float(root["leaf_value"])
        else:
            i0 = len(self.feature)
            self.bias += self._walk(root, i0, len(self.value))
            self._leaf_slots(i0)
        self.int_start.append(len(self.feature))
        self.leaf_start.append(len(self.value))

    def _walk(self, root: dict, i0: int, l0: int) -> float:
        """Append a tree's nodes in pre-order, linking each to its parent; return the tree's expected value.

        Leaves are linked as ~(local leaf index) until `_leaf_slots` knows how many internal nodes precede
        them. The expected value is summed in LightGBM's leaf order, so the bias matches its last column.
        """
        total = root["internal_count"]
        expected = {}  # leaf_index -> contribution to the expected value
        # (node, parent local index, is right child, path features, path zeros, path)
        stack = [(root, -1, False, (), (), ())]
        while stack:
            node, parent, is_right, feats, zeros, path = stack.pop()
            if "split_index" in node:
                slot = len(self.feature) - i0
                stack += self._split(node, slot, feats, zeros, path)
            else:
                slot = ~(len(self.value) - l0)
                v = float(node["leaf_value"])
                expected[node["leaf_index"]] = (node["leaf_count"] / total) * v
                self._leaf(v, feats, zeros, path)
            if parent >= 0:
                (self.right if is_right else self.left)[i0 + parent] = slot
        e = 0.0
        for leaf_index in sorted(expected):  # a plain loop: from Python 3.12 on, sum() of floats rounds otherwise
            e += expected[leaf_index]
        return e

    def _split(self, node: dict, slot: int, feats: tuple, zeros: tuple, path: tuple) -> list[tuple]:
        """Append one split node; return its children's stack entries, the right first so the left pops first.

        A feature already on the path keeps its position and multiplies in the new cover ratio; a new one
        is appended: z_d is the product of the cover ratios of the path's splits on feature d.
        """
        if node.get("decision_type") != "<=":
            raise ValueError(f"categorical split (decision_type {node.get('decision_type')!r}) on feature "
                             f"{node['split_feature']} is not supported: numerical splits only")
        f = int(node["split_feature"])
        pos = feats.index(f) if f in feats else len(feats)
        count = node["internal_count"]
        if count <= 0:
            raise ValueError(f"internal node with data count {count}: cover ratios are undefined")
        self.feature.append(f)
        self.threshold.append(_threshold(node["threshold"]))
        self.missing.append(_MISSING[node["missing_type"]])
        self.default_left.append(1 if node["default_left"] else 0)
        self.left.append(-1)
        self.right.append(-1)
        self.node_pos.append(pos)
        children = []
        for child, right in ((node["right_child"], True), (node["left_child"], False)):
            ratio = _count(child) / count
            if pos < len(feats):
                f2, z2 = feats, (*zeros[:pos], zeros[pos] * ratio, *zeros[pos + 1:])
            else:
                f2, z2 = (*feats, f), (*zeros, ratio)
            children.append((child, slot, right, f2, z2, (*path, (slot, not right))))
        return children

    def _leaf(self, v: float, feats: tuple, zeros: tuple, path: tuple) -> None:
        """Append one leaf and its path; reserve a table, or keep the path's nodes for the direct computation.

        A zero cover ratio cannot go in a table (its values are divided by z), so such a leaf is computed
        directly even when its path is short; a single-leaf tree needs neither (it is all bias).
        """
        self.value.append(v)
        self.k.append(len(feats))
        self.path_feature.extend(feats)
        self.path_zero.extend(zeros)
        self.pos_start.append(len(self.path_feature))
        if feats and len(feats) <= self.max_k and min(zeros) > 0:
            self.table_start.append(self.n_table)
            self.n_table += 1 << len(feats)
        else:
            self.table_start.append(-1)
            self.walk_node.extend(p[0] for p in path)
            self.walk_left.extend(int(p[1]) for p in path)
        self.walk_start.append(len(self.walk_node))

    def _leaf_slots(self, i0: int) -> None:
        """Turn the last tree's leaf links ~j into child slots n_int + j (its node count is known only now)."""
        n_int = len(self.feature) - i0
        for arr in (self.left, self.right):
            for i in range(i0, len(self.feature)):
                if arr[i] < 0:
                    arr[i] = n_int + ~arr[i]

    def compiled(self, n_features: int) -> CompiledTrees:
        """The collected lists as arrays; the table is left to fill (by `_build_tables`)."""
        i64 = np.int64
        node_pos = np.asarray(self.node_pos, i64)
        path_zero = np.asarray(self.path_zero, np.float64)
        with np.errstate(divide="ignore"):  # z == 0 only on directly computed leaves, which do not use it
            ratio = (1.0 - path_zero) / path_zero
        return CompiledTrees(
            n_features=n_features, max_k=self.max_k, bias=self.bias,
            int_start=np.asarray(self.int_start, i64), leaf_start=np.asarray(self.leaf_start, i64),
            feature=np.asarray(self.feature, i64), threshold=np.asarray(self.threshold, np.float64),
            missing=np.asarray(self.missing, i64), default_left=np.asarray(self.default_left, i64),
            left=np.asarray(self.left, i64), right=np.asarray(self.right, i64),
            clear=np.where(node_pos < 62, np.left_shift(1, np.minimum(node_pos, 61)), 0).astype(i64),
            node_pos=node_pos, value=np.asarray(self.value, np.float64), k=np.asarray(self.k, i64),
            pos_start=np.asarray(self.pos_start, i64), path_feature=np.asarray(self.path_feature, i64),
            path_zero=path_zero, ratio=ratio, table_start=np.asarray(self.table_start, i64),
            table=np.empty(self.n_table, np.float64), walk_start=np.asarray(self.walk_start, i64),
            walk_node=np.asarray(self.walk_node, i64), walk_left=np.asarray(self.walk_left, i64),
        )


def _with_heaps(trees: CompiledTrees, max_depth: int) -> CompiledTrees:
    """Add the complete-heap layout when every tree is at most `max_depth` deep."""
    from dataclasses import replace

    n_trees = trees.int_start.size - 1
    depth, shapes = 1, []
    for t in range(n_trees):  # levels of each real leaf: (tree, slot, heap index, level), parents first
        i0, n_int = int(trees.int_start[t]), int(trees.int_start[t + 1] - trees.int_start[t])
        stack, walk = [(0, 0, 0)], []
        while stack:
            slot, h, level = stack.pop()
            walk.append((slot, h, level))
            if slot < n_int:
                node = i0 + slot
                stack += [(int(trees.left[node]), 2 * h + 1, level + 1), (int(trees.right[node]), 2 * h + 2, level + 1)]
            else:
                depth = max(depth, level)
        shapes.append((i0, n_int, walk))
    if depth > max_depth:
        return trees
    n_in = (1 << depth) - 1
    feature = np.zeros((n_trees, n_in), np.int64)
    threshold = np.full((n_trees, n_in), np.inf)  # padded: x <= inf, and NaN (missing type None) reads as 0
    missing = np.zeros((n_trees, n_in), np.int64)
    default_left = np.ones((n_trees, n_in), np.int64)
    value = np.zeros((n_trees, 1 << depth))
    for t, (i0, n_int, walk) in enumerate(shapes):
        for slot, h, level in walk:
            if slot < n_int:
                node = i0 + slot
                feature[t, h], threshold[t, h] = trees.feature[node], trees.threshold[node]
                missing[t, h], default_left[t, h] = trees.missing[node], trees.default_left[node]
            else:  # below a real leaf every padded node goes left: its value sits at the leftmost heap leaf
                value[t, ((h + 1) << (depth - level)) - 1 - n_in] = trees.value[trees.leaf_start[t] + slot - n_int]
    # LightGBM's decision (see _goes_left) once inputs near zero read as 0.0: a NaN is 0.0 under missing type
    # None and missing under Zero and NaN; a zero is missing under Zero only; missing goes the default way
    zero_goes_left = threshold >= 0.0  # 0.0 <= threshold
    nan_left = np.where(missing == _MISSING["None"], zero_goes_left, default_left == 1)
    zero_left = np.where(missing == _MISSING["Zero"], default_left == 1, zero_goes_left)
    return replace(trees, heap_depth=depth, heap_feature=feature.astype(np.int32), heap_threshold=threshold,
                   heap_nan_left=nan_left, heap_zero_left=zero_left,
                   heap_zero_missing=bool((missing == _MISSING["Zero"]).any()), heap_value=value)


def contributions(trees: CompiledTrees, X: np.ndarray) -> np.ndarray:
    """TreeSHAP values, shape (n, n_features + 1), the last column the bias: `predict(X, pred_contrib=True)`."""
    X = _as_matrix(trees, X)
    out = np.zeros((X.shape[0], trees.n_features + 1), np.float64)
    _contrib_kernel(X, out, trees.bias, trees.int_start, trees.leaf_start, trees.feature, trees.threshold,
                    trees.missing, trees.default_left, trees.left, trees.right, trees.clear, trees.node_pos,
                    trees.value, trees.k, trees.pos_start, trees.path_feature, trees.path_zero, trees.ratio,
                    trees.table_start, trees.table, trees.walk_start, trees.walk_node, trees.walk_left)
    return out


def predict_raw(trees: CompiledTrees, X: np.ndarray, threads: int = 1, rows: np.ndarray | None = None) -> np.ndarray:
    """Raw score (log-odds), shape (n,): `booster.predict(X, raw_score=True)`. The kernels release the GIL, so
    `threads` > 1 scores that many row ranges at once (the same sums: each row is scored alone).

    rows: score only these rows of X, read where they are (the trainer scores slices of the whole panel
    without copying them out: gathering 766 k rows x 95 features into new memory took 2.7-3.4 s here)."""
    X = _as_matrix(trees, X)
    if rows is None:
        rows = np.arange(len(X), dtype=np.int64)
    else:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(X)):
            raise IndexError(f"rows must lie in [0, {len(X)}): X has {len(X)} rows")
    out = np.zeros(len(rows), np.float64)
    bounds = np.linspace(0, len(rows), max(1, min(threads, len(rows) // 10_000)) + 1).astype(np.int64)
    if len(bounds) == 2:
        _predict_rows(trees, X, rows, out)
        return out
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(lambda lo, hi: _predict_rows(trees, X, rows[lo:hi], out[lo:hi]), bounds[:-1], bounds[1:]))
    return out


def predict_probability(trees: CompiledTrees, X: np.ndarray, threads: int = 1,
                        rows: np.ndarray | None = None) -> np.ndarray:
    """`booster.predict(X)` of a binary model: the logistic of the raw score (of `rows` of X only, if given)."""
    return 1.0 / (1.0 + np.exp(-predict_raw(trees, X, threads, rows)))


def _predict_rows(trees: CompiledTrees, X: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    if trees.heap_depth:
        _heap_kernel(X, rows, out, trees.heap_depth, trees.heap_feature, trees.heap_threshold, trees.heap_nan_left,
                     trees.heap_zero_left, trees.heap_zero_missing, trees.heap_value)
    else:
        _raw_kernel(X, rows, out, trees.int_start, trees.leaf_start, trees.feature, trees.threshold, trees.missing,
                    trees.default_left, trees.left, trees.right, trees.value)


def _check_model(model: dict) -> None:
    if model.get("num_tree_per_iteration", 1) != 1 or model.get("num_class", 1) != 1:
        raise ValueError(f"multiclass models are not supported (num_class={model.get('num_class')}): "
                         "binary models only")
    objective = str(model.get("objective", ""))
    if not objective.startswith("binary"):
        raise ValueError(f"objective {objective!r} is not supported: binary models only")
    if model.get("average_output"):
        raise ValueError("random-forest models (average_output) are not supported: boosted binary models only")
    for tree in model["tree_info"]:
        if tree.get("num_cat", 0):
            raise ValueError(f"categorical splits (tree {tree.get('tree_index')}) are not supported: "
                             "numerical splits only")
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                stack += [node["left_child"], node["right_child"]]
            elif "leaf_coeff" in node:
                raise ValueError("linear-tree models (linear_tree=True) are not supported: constant leaves only")


def _threshold(t: float) -> float:
    """The dump writes an infinite threshold as +-1e300 (the model text and the predictor keep inf)."""
    t = float(t)
    return np.inf if t >= 1e300 else -np.inf if t <= -1e300 else t


def _count(node: dict) -> int:
    return node["internal_count"] if "split_index" in node else node["leaf_count"]


def _as_matrix(trees: CompiledTrees, X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)  # C or Fortran order alike: no copy of a float64 frame's values
    if X.ndim != 2 or X.shape[1] != trees.n_features:
        raise ValueError(f"X must have shape (n, {trees.n_features}), got {X.shape}")
    return X


@njit(cache=True, nogil=True)
def _weights(k):
    """Shapley weights |S|! (k - |S| - 1)! / k! for |S| = 0..k-1."""
    w = np.empty(max(k, 1), np.float64)
    w[0] = 1.0 / k
    for s in range(1, k):
        w[s] = w[s - 1] * s / (k - s)
    return w


@njit(cache=True, nogil=True)
def _build_tables(k, pos_start, zero, value, table_start, table):
    """table[B] = v * prod_{d not in B} z_d * sum_q w(q) e_{|B|-q}(z_B), e the elementary symmetric polynomials."""
    kmax = 0
    for leaf in range(k.size):
        if table_start[leaf] >= 0:
            kmax = max(kmax, k[leaf])
    E = np.zeros((1 << kmax, kmax + 1), np.float64)
    for leaf in range(k.size):
        t0 = table_start[leaf]
        if t0 < 0:
            continue
        kk = k[leaf]
        z = zero[pos_start[leaf]:pos_start[leaf] + kk]
        w = _weights(kk)
        E[0, 0] = 1.0
        for m in range(1, kk + 1):
            E[0, m] = 0.0
        for B in range(1, 1 << kk):
            low = B & (B - 1)  # B without its lowest bit j
            j = 0
            while not (B >> j) & 1:
                j += 1
            E[B, 0] = 1.0
            for m in range(1, kk + 1):
                E[B, m] = E[low, m] + z[j] * E[low, m - 1]
        for B in range(1 << kk):
            size = 0
            outside = 1.0
            for d in range(kk):
                if (B >> d) & 1:
                    size += 1
                else:
                    outside *= z[d]
            s = 0.0
            for q in range(min(size, kk - 1) + 1):  # weights exist for |S| <= k - 1 (the full set is never read)
                s += w[q] * E[B, size - q]
            table[t0 + B] = value[leaf] * outside * s


@njit(cache=True, nogil=True, inline="always")
def _goes_left(fval, threshold, missing, default_left):
    """LightGBM's NumericalDecision, after its dense-input rule: |x| <= 1e-35f is read as 0.0."""
    isnan = np.isnan(fval)
    if -_ZERO <= fval <= _ZERO or (isnan and missing != 2):
        fval = 0.0
    if (isnan if missing == 2 else missing == 1 and fval == 0.0):
        return default_left == 1
    return fval <= threshold


@njit(cache=True, nogil=True)
def _direct(row, v, z, feats, agree, w, e):
    """One leaf's contributions without a table: O(k^3), for long paths (or zero cover ratios)."""
    kk = z.size
    outside = 1.0
    a = 0
    for d in range(kk):
        if agree[d]:
            a += 1
        else:
            outside *= z[d]
    # G(A): all agreeing features may join S
    for m in range(a + 1):
        e[m] = 0.0
    e[0] = 1.0
    for d in range(kk):
        if agree[d]:
            for m in range(a, 0, -1):
                e[m] += z[d] * e[m - 1]
    g = 0.0
    for q in range(a + 1):
        g += w[q] * e[a - q]
    g *= v * outside
    for j in range(kk):
        if not agree[j]:
            row[feats[j]] -= g
            continue
        for m in range(a):
            e[m] = 0.0
        e[0] = 1.0
        for d in range(kk):
            if agree[d] and d != j:
                for m in range(a - 1, 0, -1):
                    e[m] += z[d] * e[m - 1]
        s = 0.0
        for q in range(a):
            s += w[q] * e[a - 1 - q]
        row[feats[j]] += v * (1.0 - z[j]) * outside * s


@njit(cache=True, nogil=True)
def _decide(xf, nb, threshold, missing, default_left, m_in, m_left, m_right, clear, went):
    """One split for a block of rows: each child's agree-mask, and which way each row went."""
    dl = default_left == 1
    for r in range(nb):
        v = xf[r]
        isnan = v != v
        if -_ZERO <= v <= _ZERO or (isnan and missing != 2):  # see _goes_left
            v = 0.0
        gl = dl if (isnan if missing == 2 else missing == 1 and v == 0.0) else v <= threshold
        m = m_in[r]
        cut = m & ~clear
        m_left[r] = m if gl else cut
        m_right[r] = cut if gl else m
        went[r] = 1 if gl else 0


@njit(cache=True, nogil=True)
def _contrib_kernel(X, out, bias, int_start, leaf_start, feature, threshold, missing, default_left, left, right,
                    clear, node_pos, value, k, pos_start, path_feature, path_zero, ratio, table_start, table,
                    walk_start, walk_node, walk_left):
    # Rows are the inner loop everywhere: additions into one feature's column are then independent of each
    # other instead of one long chain through the same memory cell.
    n, n_features = X.shape
    n_trees = int_start.size - 1
    max_slots = 1
    for t in range(n_trees):
        max_slots = max(max_slots, int_start[t + 1] - int_start[t] + leaf_start[t + 1] - leaf_start[t])
    max_path = 1
    for leaf in range(k.size):
        max_path = max(max_path, k[leaf] + 1)
    block = 256
    XT = np.empty((n_features, block), np.float64)
    acc = np.empty((n_features, block), np.float64)
    M = np.empty((max_slots, block), np.int64)  # agree-mask per node (then leaf) slot and row
    W = np.empty((max_slots, block), np.uint8)  # 1 where the row goes left at that internal node
    agree = np.empty(max_path, np.uint8)
    e = np.empty(max_path + 1, np.float64)
    for r0 in range(0, n, block):
        nb = min(block, n - r0)
        for r in range(nb):
            for f in range(n_features):
                XT[f, r] = X[r0 + r, f]
        acc[:, :] = 0.0
        for t in range(n_trees):
            i0 = int_start[t]
            n_int = int_start[t + 1] - i0
            if n_int == 0:
                continue  # a single leaf: bias only
            M[0, :nb] = -1
            for i in range(n_int):
                node = i0 + i
                _decide(XT[feature[node]], nb, threshold[node], missing[node], default_left[node], M[i],
                        M[left[node]], M[right[node]], clear[node], W[i])
            l0 = leaf_start[t]
            for j in range(leaf_start[t + 1] - l0):
                leaf = l0 + j
                kk = k[leaf]
                p0 = pos_start[leaf]
                t0 = table_start[leaf]
                mj = M[n_int + j]
                if t0 >= 0:
                    low = (1 << kk) - 1
                    for r in range(nb):
                        mj[r] &= low
                    for q in range(kk):
                        a = acc[path_feature[p0 + q]]
                        c = ratio[p0 + q]
                        bit = 1 << q
                        for r in range(nb):
                            mm = mj[r]
                            # agree: (1 - z) / z * G(A minus q); disagree: -G(A), and A minus q = A there
                            a[r] += (c if mm & bit else -1.0) * table[t0 + (mm & ~bit)]
                else:
                    w = _weights(kk)
                    for r in range(nb):
                        for q in range(kk):
                            agree[q] = 1
                        for s in range(walk_start[leaf], walk_start[leaf + 1]):
                            i = walk_node[s]
                            if W[i, r] != walk_left[s]:
                                agree[node_pos[i0 + i]] = 0
                        _direct(acc[:, r], value[leaf], path_zero[p0:p0 + kk], path_feature[p0:p0 + kk], agree,
                                w, e)
        for r in range(nb):
            for f in range(n_features):
                out[r0 + r, f] = acc[f, r]
            out[r0 + r, n_features] = bias


@njit(cache=True, nogil=True)
def _raw_kernel(X, rows, out, int_start, leaf_start, feature, threshold, missing, default_left, left, right, value):
    n_trees = int_start.size - 1
    for r in range(rows.shape[0]):
        x = X[rows[r]]
        s = 0.0
        for t in range(n_trees):
            i0 = int_start[t]
            n_int = int_start[t + 1] - i0
            slot = 0
            while slot < n_int:
                node = i0 + slot
                if _goes_left(x[feature[node]], threshold[node], missing[node], default_left[node]):
                    slot = left[node]
                else:
                    slot = right[node]
            s += value[leaf_start[t] + slot - n_int]
        out[r] = s


@njit(cache=True, nogil=True)
def _heap_kernel(X, rows, out, depth, feature, threshold, nan_left, zero_left, zero_missing, value):
    # every tree has the same number of levels, so the walk has no data-dependent loop exit, and rows are
    # the inner loop: their walks are independent and the processor overlaps them. A block of rows is first
    # copied feature-major (and snapped to zero as LightGBM reads dense input), so the cells a level reads
    # sit in 32 consecutive floats of one small buffer: 35-45 % faster than reading the rows where they lie.
    n = rows.shape[0]
    n_in = (1 << depth) - 1
    block = 32
    idx = np.empty(block, np.int64)
    acc = np.empty(block)
    cells = np.empty((X.shape[1], block))
    for b0 in range(0, n, block):
        nb = min(block, n - b0)
        for r in range(nb):
            x = X[rows[b0 + r]]
            for f in range(x.shape[0]):
                v = x[f]
                cells[f, r] = 0.0 if -_ZERO <= v <= _ZERO else v  # NaN compares false: kept
            acc[r] = 0.0
        for t in range(feature.shape[0]):
            for r in range(nb):
                idx[r] = 0
            for _ in range(depth):
                for r in range(nb):
                    h = idx[r]
                    v = cells[feature[t, h], r]
                    if zero_missing:
                        zero = v == 0.0
                        left = ((v <= threshold[t, h]) & ~zero) | ((v != v) & nan_left[t, h]) | (zero & zero_left[t, h])
                    else:
                        left = (v <= threshold[t, h]) | ((v != v) & nan_left[t, h])
                    idx[r] = 2 * h + 2 - left
            for r in range(nb):
                acc[r] += value[t, idx[r] - n_in]
        for r in range(nb):
            out[b0 + r] = acc[r]
