"""A scikit-learn transformer over the feature builder, for pipelines and model code.

Input is the contract's `Tables` (not a matrix): features are a function of whole repayment histories.
Output is a DataFrame indexed by (account_id, as_of) with the catalog's columns, so `set_output` and
`get_feature_names_out` behave as scikit-learn expects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from features.builders import DEFAULT_PENALTY_RATE, build_features
from features.catalog import Catalog, default_catalog
from features.contract import Tables


class RepaymentFeatures(TransformerMixin, BaseEstimator):
    """Point-in-time features as of each date in `as_of` (default: the data's extraction date).

    Parameters
    ----------
    as_of : sequence of dates, optional
    catalog : Catalog, optional -- the project's default catalog when None
    penalty_rate : float -- daily penalty interest on the overdue amount, beyond grace
    """

    def __init__(self, as_of=None, catalog: Catalog | None = None, penalty_rate: float = DEFAULT_PENALTY_RATE):
        self.as_of = as_of
        self.catalog = catalog
        self.penalty_rate = penalty_rate

    def _catalog(self) -> Catalog:
        return self.catalog if self.catalog is not None else default_catalog()

    def fit(self, X: Tables, y=None):
        if not isinstance(X, Tables):
            raise TypeError(f"RepaymentFeatures takes the contract's Tables (features.load_tables), got "
                            f"{type(X).__name__}")
        if not 0 <= self.penalty_rate < 0.01:
            raise ValueError(f"penalty_rate must be a daily rate in [0, 0.01), got {self.penalty_rate}")
        self.feature_names_out_ = np.array(self._catalog().names, dtype=object)
        self.catalog_version_ = self._catalog().version
        return self

    def transform(self, X: Tables) -> pd.DataFrame:
        if not hasattr(self, "feature_names_out_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("RepaymentFeatures is not fitted yet: call fit(tables) first")
        as_of = self.as_of if self.as_of is not None else [X.extraction_date]
        frame = build_features(X, as_of, self._catalog(), penalty_rate=self.penalty_rate)
        return frame.set_index(["account_id", "as_of"])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(self._catalog().names, dtype=object)
