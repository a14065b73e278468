"""Decisions from predictions: score adjustments, limit changes, early warnings, collection treatments.

Every threshold lives in policy/default.toml (config.py checks it); decide.py applies it to a chunk of accounts.
"""
