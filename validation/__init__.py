"""Model validation: metrics (AUC, Gini, KS, calibration, account-level bootstrap, PSI) and the HTML report.

`validation.metrics` holds the numbers, `validation.report` the self-contained HTML report and its plots.
Both take plain arrays (labels, predictions, account ids), so they validate any model's predictions.
"""

from validation import metrics
from validation.metrics import *  # noqa: F403  (the numbers, re-exported: metrics.__all__ is the list)

_REPORT = ("Report", "calibration_figure", "decile_table", "roc_figure", "score_distribution_figure")


def __getattr__(name: str):
    """The report's names load matplotlib on first use: the scoring job needs only the metrics."""
    if name in _REPORT:
        from validation import report

        return getattr(report, name)
    raise AttributeError(f"module 'validation' has no attribute {name!r}")


__all__ = [*metrics.__all__, *_REPORT]
