"""Ground floor of dynascore: the input data contract, adapters onto it, and (later) point-in-time features.

It imports nothing of ours; `models/`, `validation/` and the CLIs stand on it.
"""

from features.adapters import MonthlyConfig, from_monthly
from features.contract import ContractError, Problem, Tables, load_tables, validate

__all__ = ["ContractError", "MonthlyConfig", "Problem", "Tables", "from_monthly", "load_tables", "validate"]
