"""Decisions from predictions: score adjustments, limit changes, collection treatments (issue 5)."""
