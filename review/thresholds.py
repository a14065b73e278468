"""The pack's thresholds, declared once: every pass / fail of the summary and every finding reads them."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Thresholds:
    psi_alert: float = 0.25  # score PSI or a feature's CSI above this is a finding
    psi_warning: float = 0.10
    jeffreys_level: float = 0.99  # a grade whose one-sided Jeffreys p-value is below 1 - level fails
    binomial_level: float = 0.99
    traffic_light: tuple[float, float] = (0.95, 0.999)  # yellow above the first binomial quantile, red above the second
    hosmer_lemeshow_level: float = 0.99
    spiegelhalter_level: float = 0.99
    auc_decline_level: float = 0.95  # the one-sided test that AUC has not declined since development
    migration_level: float = 0.99
    min_rows_per_grade: int = 30  # fewer rows: the grade's tests are shown but not judged
    oe_band: tuple[float, float] = (0.8, 1.25)  # observed / predicted of the whole window
    monotonicity_violations: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


THRESHOLDS = Thresholds()
