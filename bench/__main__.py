"""python -m bench NAME [options]: run one benchmark; its last line of output is one JSON object.

Benchmarks:
  simulate   generate a synthetic world and time it (python -m bench simulate --accounts 1000000 --months 24)
  features   build the feature catalog, against the polars reference and a pandas apply
             (python -m bench features --accounts 1000000 --months 24)
  train      the training path against bare LightGBM fits (python -m bench train --accounts 200000 --months 36)
  score      the nightly scoring job, and its compiled trees against LightGBM (python -m bench score --accounts 1000000)
"""
from __future__ import annotations

import importlib
import json
import sys

BENCHMARKS = {"simulate": "bench.simulate", "features": "bench.features", "train": "bench.train",
              "score": "bench.score"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        print(__doc__, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown benchmark {argv[0]!r}; choose one of {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    figures = module.run(argv[1:])
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
