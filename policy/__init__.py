"""Decisions from predictions: score adjustments, limit changes, early warnings, collection treatments.

Every threshold lives in policy/default.toml (config.py checks it); each rule is one object in rules.py, and
engine.py applies them to a chunk of accounts for decide.py.
"""
