"""The model's features rebuilt for a sample of the reviewed accounts, and the predictions they give.

The sample serves what needs the features themselves: the benchmark scorecard and the champion on the same
rows, the explanation (TreeSHAP, the monotonicity sweep), and a replication check: the model, fed the features
rebuilt from the data now, must give the probabilities the nightly job logged then.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.builders import Prepared, pair_block, to_days
from features.catalog import default_catalog
from features.outcomes import BillOutcomes
from models.bundle import Bundle
from models.latent_state import LatentStateFilter, add_latent_features
from models.scorecard import BenchmarkScorecard

SAMPLE_ACCOUNTS = 20_000  # accounts whose rows of the window are replayed (all of them when fewer)


def features_of(prep: Prepared, bundle: Bundle, rows: pd.DataFrame) -> pd.DataFrame:
    """The bundle's features for each (account_id, as_of) of `rows`, in their order: the catalog's through
    the builder, then the latent-state filter's when the bundle has one."""
    pos = np.searchsorted(prep.account_id, rows["account_id"].to_numpy(np.int64))
    days = to_days(rows["as_of"].to_numpy())
    block = pair_block(prep, pos, days, default_catalog())
    frame = block.frame()
    if bundle.latent:
        frame = add_latent_features(frame, BillOutcomes(prep), LatentStateFilter.from_dict(bundle.latent))
    return frame[bundle.feature_names].set_axis(rows.index)


def predictions(bundle: Bundle, X: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Each target's calibrated probability from the bundle's models, as `<prefix><target>` columns."""
    matrix = X[bundle.feature_names].to_numpy(np.float64)
    return pd.DataFrame({f"{prefix}{t}": m.predict(matrix) for t, m in bundle.models.items()}, index=X.index)


def scorecards(bundle: Bundle, X: pd.DataFrame) -> pd.DataFrame:
    """Each target's benchmark scorecard probability, where the bundle carries one."""
    out = {}
    for t, m in bundle.models.items():
        if m.scorecard:
            card = BenchmarkScorecard.from_dict(m.scorecard)
            out[f"scorecard_{t}"] = card.predict_proba(X[list(card.feature_names_in_)])[:, 1]
    return pd.DataFrame(out, index=X.index)
