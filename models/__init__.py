"""Estimators, calibration, score scaling, reason codes and the saved model bundle."""
