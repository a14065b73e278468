"""What every command line of dynascore shares: how it reads days, paths and counts, its exit codes, and
how loud mlflow may be.

The argument types check a value while argparse reads it, so a mistake stops the command before any model,
data or worker process loads, with one line naming the option:

  error: argument --as-of: '2025-12' is not a date written YYYY-MM-DD (e.g. 2025-12-31)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from features.calendar_day import calendar_day

USED_WRONGLY = 2
EXIT_CODES = ("Exit codes: 0 done, 1 the run refused (data, model or output found wrong), "
              "2 the command was used wrongly.")
HELP_WIDTH = 110  # as the docstrings the help shows are written


class Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (examples keep their lines), options wrapped at HELP_WIDTH."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=HELP_WIDTH)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, `error: <what>` and where the options are listed, exit code 2, and
    help as written (`Help`). Its subcommands' parsers are of this class too (argparse makes them so)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(USED_WRONGLY, f"error: {message}\n  ({self.prog} --help lists the options)\n")


# --- argument types ---------------------------------------------------------------------------------------
def day(text: str) -> str:
    """A calendar day written YYYY-MM-DD, returned as such: 2025-12, 31/12/2025 and 2025-02-30 are refused."""
    try:
        return calendar_day(text, '').isoformat()
    except ValueError as exc:
        message = str(exc).strip()
        if message.endswith("YYYY-MM-DD"):
            message += " (e.g. 2025-12-31)"
        raise argparse.ArgumentTypeError(message) from None


def directory(text: str) -> Path:
    """A directory that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def data_directory(text: str) -> Path:
    """A data directory that exists (tables in the contract), or a message saying how to make one."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"data directory {text} does not exist: point it at a folder of tables in "
                                         "the contract (python -m simulation generate --out DIR makes a synthetic "
                                         "one)")
    return directory(text)


def existing_file(text: str) -> Path:
    """A file that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    return path


def not_a_file(text: str) -> Path:
    """A directory to write into: it may not exist yet, but it must not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def positive(kind: Callable[[str], int | float] = int, what: str = "a whole number") -> Callable[[str], int | float]:
    """A number of `kind` above zero (counts: workers, chunk sizes, trials; budgets in seconds)."""
    def read(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be at least 1" if kind is int else f"{text} must be above 0")
        return value

    read.__name__ = f"positive_{kind.__name__}"
    return read


# --- mlflow's own output ----------------------------------------------------------------------------------
# printed by mlflow to stderr itself, not through logging, when a model version is registered
REGISTRY_NOTES = re.compile(r"Successfully registered model '|Registered model '.*' already exists|Created version '")


def mlflow_output(verbose: bool) -> None:
    """mlflow's INFO lines, download bars and run links with --verbose; else only its warnings and errors.

    mlflow reads these variables when it is imported (and spawned workers inherit them); a logger level is set
    too for when it is imported already.
    """
    level = "INFO" if verbose else "WARNING"
    os.environ["MLFLOW_LOGGING_LEVEL"] = level
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "true" if verbose else "false"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "false" if verbose else "true"
    logging.getLogger("mlflow").setLevel(level)


@contextlib.contextmanager
def registry_notes_held_back() -> Iterator[None]:
    """Around a registration: mlflow's printed 'Successfully registered model', 'Registered model ... already
    exists' and 'Created version' lines are dropped while its logger is quieter than INFO (see `mlflow_output`);
    anything else written to stderr is passed on when the block ends."""
    if logging.getLogger("mlflow").getEffectiveLevel() <= logging.INFO:
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        sys.stderr.write("".join(line for line in held.getvalue().splitlines(keepends=True)
                                 if not REGISTRY_NOTES.match(line)))


def refused(message: str, code: int = 1) -> int:
    """A command's refusal: one line on stderr, no traceback, and the exit code (1: the run refused)."""
    print(f"error: {message}", file=sys.stderr)
    return code
