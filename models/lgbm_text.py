"""LightGBM's model text read without LightGBM: the trees in the form `Booster.dump_model()` gives them.

Scoring needs only the trees' numbers. Importing LightGBM to read them (it brings scikit-learn and SciPy)
cost the nightly job's parent over a second before its first chunk could start. The text is LightGBM's own
format; thresholds and leaf values are written with 17 significant digits, so `float()` reads the very
doubles LightGBM reads (tests compare every compiled array with the ones from `dump_model()`).
"""
from __future__ import annotations

_MISSING_TYPES = ("None", "Zero", "NaN")  # decision_type bits 2-3
_CATEGORICAL, _DEFAULT_LEFT = 1, 2  # decision_type bits 0 and 1


def model_header(text: str) -> dict[str, str]:
    """The key=value lines before the first tree (version, objective, feature_names, ...)."""
    end = text.find("\nTree=")
    header = {}
    for line in (text if end < 0 else text[:end]).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key] = value
        elif line.strip():
            header[line.strip()] = ""  # flags such as average_output
    return header


def feature_names(text: str) -> list[str]:
    """The model's feature names, in its column order."""
    return model_header(text).get("feature_names", "").split()


def read_model_text(text: str) -> dict:
    """The model as `Booster.dump_model()` gives it, as far as a predictor reads it: the header's counts and
    objective, and each tree as nested split and leaf dicts with the same keys and values."""
    if not text.startswith("tree\n"):
        raise ValueError("not a LightGBM model text (it does not start with 'tree')")
    header = model_header(text)
    body = text[text.find("\nTree="):text.find("\nend of trees")]
    trees = [_tree(block) for block in body.split("\nTree=")[1:]]
    return {
        "version": header.get("version"), "num_class": int(header.get("num_class", 1)),
        "num_tree_per_iteration": int(header.get("num_tree_per_iteration", 1)),
        "max_feature_idx": int(header["max_feature_idx"]), "objective": header.get("objective", ""),
        "average_output": "average_output" in header, "feature_names": header.get("feature_names", "").split(),
        "tree_info": trees,
    }


def _tree(block: str) -> dict:
    """One `Tree=i` block: its index, counts and structure."""
    index, _, rest = block.partition("\n")
    fields = dict(line.split("=", 1) for line in rest.splitlines() if "=" in line)
    n_leaves = int(fields["num_leaves"])
    info = {"tree_index": int(index), "num_leaves": n_leaves, "num_cat": int(fields.get("num_cat", 0)),
            "shrinkage": float(fields.get("shrinkage", 1))}
    leaf_value = _floats(fields["leaf_value"])
    linear = fields.get("is_linear", "0") == "1"
    if n_leaves == 1:
        info["tree_structure"] = {"leaf_value": leaf_value[0]}
        return info
    leaves = [{"leaf_index": j, "leaf_value": leaf_value[j], "leaf_count": c}
              for j, c in enumerate(_ints(fields["leaf_count"]))]
    if linear:  # refused by the predictor, as dump_model's leaf_coeff is
        for leaf in leaves:
            leaf["leaf_coeff"] = []
    nodes = [{"split_index": i, "split_feature": f, "threshold": t, "decision_type": "==" if d & _CATEGORICAL else "<=",
              "default_left": bool(d & _DEFAULT_LEFT), "missing_type": _MISSING_TYPES[(d >> 2) & 3],
              "internal_count": c}
             for i, (f, t, d, c) in enumerate(zip(_ints(fields["split_feature"]), _floats(fields["threshold"]),
                                                  _ints(fields["decision_type"]), _ints(fields["internal_count"]),
                                                  strict=True))]
    for node, left, right in zip(nodes, _ints(fields["left_child"]), _ints(fields["right_child"]), strict=True):
        node["left_child"] = nodes[left] if left >= 0 else leaves[~left]  # a leaf j is written as ~j
        node["right_child"] = nodes[right] if right >= 0 else leaves[~right]
    info["tree_structure"] = nodes[0]
    return info


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]
