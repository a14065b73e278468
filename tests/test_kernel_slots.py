"""The catalog and the feature kernel agree on the signals and the account state, slot by slot.

The catalog declares them by name (features.catalog.SIGNALS, ACCOUNT_STATE); the kernel's slots derive from
that declaration and its code writes each by name. A name declared but never written, or written but never
declared, fails here, as does a state slot some row leaves unwritten.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from golden_world import AS_OF, golden_frames

from features import builders, kernels
from features.catalog import ACCOUNT_STATE, SIGNAL_INDEX, SIGNALS, Feature, default_catalog
from features.contract import validate

KERNELS = Path(kernels.__file__)


def _written(slots_param: str, function: str | None = None) -> set[str]:
    """Names NAME of the kernel's assignments `x[<slots_param>.NAME] = ...` (in `function` only, if given)."""
    tree = ast.parse(KERNELS.read_text())
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and function in (None, n.name)]
    names = set()
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    index = target.slice if isinstance(target, ast.Subscript) else None
                    if isinstance(index, ast.Attribute) and isinstance(index.value, ast.Name) and \
                            index.value.id == slots_param:
                        names.add(index.attr)
    return names


@pytest.fixture(scope="module")
def tables():
    return validate(golden_frames())


def test_every_declared_signal_and_state_has_a_kernel_slot_and_no_other():
    assert set(kernels.SignalSlots._fields) == set(SIGNALS)
    assert set(kernels.StateSlots._fields) == set(ACCOUNT_STATE)
    assert {name: getattr(kernels.SIGNAL, name) for name in SIGNALS} == SIGNAL_INDEX
    assert sorted(kernels.STATE) == list(range(len(ACCOUNT_STATE)))
    assert kernels.INTEGER_SIGNALS.issubset(SIGNALS)


def test_the_kernel_writes_every_declared_signal_and_state_slot_and_no_other():
    assert _written("s", "_signals") == set(SIGNALS)
    assert _written("slot") == set(ACCOUNT_STATE)


def test_every_row_has_every_state_slot_written(tables):
    shown = [Feature(name, "the kernel's state slot", 0, "usage") for name in ACCOUNT_STATE
             if name not in default_catalog().names]
    frame = builders.build_features(tables, list(AS_OF), default_catalog().with_features(*shown))
    for name in ACCOUNT_STATE:
        bits = frame[name].to_numpy(np.float64).view(np.int64)
        assert not (bits == kernels.UNWRITTEN_BITS).any(), f"the kernel leaves state slot {name} unwritten"


def test_a_slot_nobody_writes_shows_as_unwritten(tables):
    """The check above can fail: a plan with one more state column than the kernel writes finds it unwritten."""
    prep = builders.Prepared(tables)
    days = builders.as_of_days(list(AS_OF), prep)
    layout = builders._layout(days, *kernels.open_days(prep.open_day, days), by_date=True)
    catalog = default_catalog()
    col = {name: i for i, name in enumerate(catalog.names)}
    plan, _, n_helpers, _ = builders._kernel_plan(catalog, builders._sources(catalog, prep), col, 0.0005)
    out = np.zeros((len(col), len(layout.row_account)))
    spare = np.zeros((n_helpers + 1, len(layout.row_account)))
    # the state slots shifted by one: stage column 0 of the state is the extra one, into the last helper row
    shifted = kernels.StateSlots(**{name: slot + 1 for name, slot in kernels.STATE._asdict().items()})
    plan = plan._replace(state_column=np.r_[-n_helpers - 1, plan.state_column])
    kernels.build(prep.history(), layout, plan, kernels.Slots(kernels.SIGNAL, shifted), kernels.Output(out, spare))
    assert (spare[-1].view(np.int64) == kernels.UNWRITTEN_BITS).any()


def test_fingerprints_are_short_hashes_of_each_declaration():
    catalog = default_catalog()
    prints = catalog.fingerprints()
    assert list(prints) == catalog.names and all(len(p) == 12 for p in prints.values())
    assert len(set(prints.values())) == len(catalog)
    late = catalog["late_n12"]
    assert dataclasses.replace(late, window=type(late.window)(6)).fingerprint != late.fingerprint
    assert dataclasses.replace(late, risk=-1).fingerprint != late.fingerprint
