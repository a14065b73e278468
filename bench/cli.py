"""The command line every benchmark shares: the world's size and seed, and help that reads like the other CLIs'."""
from __future__ import annotations

import argparse

from features.cli import EXIT_CODES, Parser, data_directory, positive


def bench_parser(name: str, doc: str, *, accounts: int, months: int, workers: int | None = None,
                 data: bool = False, history: int = 36) -> argparse.ArgumentParser:
    """The parser of `python -m bench NAME`, with the options every benchmark has.

    `doc` is the benchmark module's docstring: its first paragraph describes, the rest (goal, what is timed,
    examples) follows the options. --accounts, --months, --history-months and --seed choose the simulated
    world; --workers is added where the work runs in worker processes (default `workers`), --data where a
    folder of one's own can stand in for the simulated world.
    """
    head, _, rest = doc.strip().partition("\n\n")
    ap = Parser(prog=f"python -m bench {name}", description=head, epilog=f"{rest}\n\n{EXIT_CODES}")
    ap.add_argument("--accounts", type=positive(), default=accounts, metavar="N",
                    help=f"accounts in the simulated world (default {accounts:,})")
    ap.add_argument("--months", type=positive(), default=months, metavar="N",
                    help=f"as-of months of the simulated world (default {months})")
    ap.add_argument("--history-months", type=int, default=history, metavar="N",
                    help=f"months of warehouse history before the first as-of month (default {history})")
    ap.add_argument("--seed", type=int, default=1, metavar="N", help="the simulated world's seed (default 1)")
    if workers is not None:
        ap.add_argument("--workers", type=positive(), default=workers, metavar="N",
                        help=f"worker processes (default {workers})")
    if data:
        ap.add_argument("--data", type=data_directory, metavar="DIR",
                        help="a data folder in the contract, used as it is, instead of the simulated world "
                             "(default: the world of --accounts, --months and --seed, generated once into "
                             "data/synthetic/ and reused)")
    return ap
