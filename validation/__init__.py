"""Metrics (AUC, Gini, KS, PSI, calibration) and the validation report (issue 4)."""
