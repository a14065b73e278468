"""Benchmark datasets: a simulated world per (accounts, months, seed), generated once and reused.

The manifest records the request and a hash of the simulator's source, so a world made by an older
simulator is regenerated rather than silently reused.
"""
from __future__ import annotations

import sys
from pathlib import Path

from simulation.generate import MANIFEST, Request, code_version, generate, read_manifest

CACHE = Path(__file__).resolve().parent.parent / "data" / "synthetic"


def dataset(accounts: int, months: int, seed: int, folder: Path | None = None, history: int = 36) -> Path:
    """The simulated world for these arguments, generated once and reused while its manifest matches."""
    folder = folder or CACHE / f"bench-{accounts}x{history}+{months}-s{seed}"
    wanted = {"accounts": accounts, "months": months, "seed": seed, "scenario": "baseline",
              "history_months": history}
    if (folder / MANIFEST).exists():
        saved = read_manifest(folder)
        request = saved.get("request", {})
        if all(request.get(k) == v for k, v in wanted.items()) and saved.get("code") == code_version():
            return folder
    print(f"generating {accounts:,} accounts x {history} + {months} months (seed {seed}) into {folder} (not timed)",
          file=sys.stderr)
    generate(folder, Request(accounts, months, seed, history_months=history), progress=False)
    return folder


