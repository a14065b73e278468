"""The account hash that draws control cells and the calibration half is pinned: a change to it would
silently move live accounts between control and treatment."""
import numpy as np
import pytest

from features.stable_hash import account_uniforms
from simulation.rng import uniforms

IDS = np.array([0, 1, 2, 42, 123456789, -5, 2**40])
PINNED = {
    "dynascore-collection-1": ["0x1.487d3f7f027f9p-1", "0x1.ec54903835a98p-2", "0x1.718f6ac46fae4p-3",
                               "0x1.fa3f2cf6a681ep-2", "0x1.7c4ed966d98f2p-2", "0x1.888da48bf19fcp-3",
                               "0x1.88475ecb90ca6p-1"],
    "dynascore-calibration-half": ["0x1.d5b3e71c68a0ap-1", "0x1.3a48848584758p-4", "0x1.bcc66c88644bap-1",
                                   "0x1.d2e1ca2d62effp-1", "0x1.da71c3fdad9e8p-4", "0x1.d23e0e0496100p-1",
                                   "0x1.31b0d16eefd96p-2"],
}


@pytest.mark.parametrize("salt", sorted(PINNED))
def test_account_uniforms_are_pinned(salt):
    got = account_uniforms(IDS, salt)
    assert [float(x).hex() for x in got] == PINNED[salt]


def test_account_uniforms_ignore_row_order_and_salt_changes_the_draw():
    ids = np.arange(10_000, dtype=np.int64)
    u = account_uniforms(ids, "a")
    perm = np.random.default_rng(0).permutation(len(ids))
    np.testing.assert_array_equal(account_uniforms(ids[perm], "a"), u[perm])
    assert ((u >= 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.02
    assert abs(np.corrcoef(u, account_uniforms(ids, "b"))[0, 1]) < 0.05


def test_simulator_draws_unchanged_by_the_move():
    """The simulator's keyed draws share the finaliser: its values are pinned too."""
    got = uniforms(7, 3, np.array([0, 1, 99]), np.array([0, 5, 35]))
    assert [float(x).hex() for x in got] == ["0x1.214b2e34f4d26p-1", "0x1.015f9148605d0p-4", "0x1.a1cd1f0732568p-2"]
