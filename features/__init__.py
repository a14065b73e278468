"""Ground floor of dynascore: the input data contract, adapters onto it, and (later) point-in-time features.

It imports nothing of ours; `models/`, `validation/` and the CLIs stand on it.
"""

import importlib

_EXPORTS = {"MonthlyConfig": "features.adapters", "from_monthly": "features.adapters",
            "ContractError": "features.contract", "Problem": "features.contract", "Tables": "features.contract",
            "load_tables": "features.contract", "validate": "features.contract"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The package's names, imported when first used: a command line that only checks its arguments (through
    features.cli) does not pay for pandas before it has to."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'features' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
