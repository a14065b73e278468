"""The mlflow pyfunc model, logged *from code*: loading it runs this file and unpickles nothing.

mlflow stores this file beside the model and executes it at load time; `set_model` at the bottom hands it
the model object. Everything the model knows lives in the bundle artifact (LightGBM text models + JSON),
which `load_bundle` verifies by checksum before the first prediction. `models/` travels with the model as
a code path, so `models.bundle` imports even where dynascore is not installed.
"""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from models.bundle import Bundle, load_bundle


class BundleModel(PythonModel):
    """Calibrated probabilities per target (pd_default, p_early_warning, ...) and the score."""

    bundle: Bundle | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = load_bundle(context.artifacts["bundle"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        if self.bundle is None:
            self.load_context(context)
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.bundle.predict(frame)


mlflow.models.set_model(BundleModel())
