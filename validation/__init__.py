"""Model validation: metrics (AUC, Gini, KS, calibration, account-level bootstrap, PSI) and the HTML report.

`validation.metrics` holds the numbers, `validation.report` the self-contained HTML report and its plots.
Both take plain arrays (labels, predictions, account ids), so they validate any model's predictions.
"""

from validation.metrics import (
    DRIFT_THRESHOLDS,
    MetricError,
    auc,
    bootstrap_auc_ci,
    bootstrap_auc_diff_ci,
    bootstrap_aucs,
    brier,
    calibration_table,
    drift_level,
    ece,
    equal_frequency_bins,
    gini,
    ks,
    log_loss,
    metric_set,
    psi,
    reference_distribution,
    roc_points,
)

_REPORT = ("Report", "calibration_figure", "decile_table", "roc_figure", "score_distribution_figure")


def __getattr__(name: str):
    """The report's names load matplotlib on first use: the scoring job needs only the metrics."""
    if name in _REPORT:
        from validation import report

        return getattr(report, name)
    raise AttributeError(f"module 'validation' has no attribute {name!r}")

__all__ = [
    "DRIFT_THRESHOLDS",
    "MetricError",
    "Report",
    "auc",
    "bootstrap_auc_ci",
    "bootstrap_auc_diff_ci",
    "bootstrap_aucs",
    "brier",
    "calibration_figure",
    "calibration_table",
    "decile_table",
    "drift_level",
    "ece",
    "equal_frequency_bins",
    "gini",
    "ks",
    "log_loss",
    "metric_set",
    "psi",
    "reference_distribution",
    "roc_figure",
    "roc_points",
    "score_distribution_figure",
]
