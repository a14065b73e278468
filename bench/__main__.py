"""Time one part of dynascore on a simulated world, beside a baseline run in the same process.

benchmarks:
  simulate   generate a synthetic world, truth and Parquet writes included
  features   build the feature catalog for one and for twelve as-of dates, against the polars reference
             query and a per-account pandas apply
  train      the training path from panel to registered model, against bare LightGBM fits
  score      the nightly scoring job over a portfolio, and its compiled trees against LightGBM's own
  validation the validation pack from a year of score files, against the same AUCs computed by hand
  monthly    a bureau-style monthly file: the project's features and model against LightGBM on the raw
             columns, and the gap to the day-precise path on the same accounts
  spark      the nightly scoring job on Spark against the local engine: wall of each, where Spark's time
             goes (session, shuffle, groups, kernel, write), and whether the outputs are equal

Each prints its figures and whether its goal is met, then ends with one line of JSON holding the same
figures, for programs to compare. Each has its own options, defaults and goal: python -m bench NAME --help.
The simulated worlds (and the scoring benchmark's model) are made once into data/synthetic/ and reused
while the simulator's code is unchanged; making them is not timed.

Examples:
  python -m bench simulate --accounts 5000 --months 12       # a small run
  python -m bench features --accounts 1000000 --months 24    # the goal's size
  python -m bench train --help                               # one benchmark's options, defaults and goal
"""
from __future__ import annotations

import importlib
import json
import sys

from features.cli import EXIT_CODES, USED_WRONGLY

BENCHMARKS = {"simulate": "bench.simulate", "features": "bench.features", "train": "bench.train",
              "score": "bench.score", "validation": "bench.validation",
              "monthly": "bench.monthly", "spark": "bench.spark"}
USAGE = f"usage: python -m bench [-h] {{{','.join(BENCHMARKS)}}} [options]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(f"{USAGE}\n\n{__doc__.strip()}\n\n{EXIT_CODES}")
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        what = f"unknown benchmark {argv[0]!r}" if argv else "name a benchmark"
        print(f"error: {what}; choose one of {', '.join(BENCHMARKS)}\n  (python -m bench --help lists them)",
              file=sys.stderr)
        return USED_WRONGLY
    module = importlib.import_module(BENCHMARKS[argv[0]])
    figures = module.run(argv[1:])
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
