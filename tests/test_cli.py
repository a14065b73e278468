"""The command lines from the outside: days only as YYYY-MM-DD, mistakes refused before anything heavy starts,
one exit-code convention, help that states it, a training summary whose score command parses, quiet mlflow.

Everything here runs in this process (argparse stops at the first mistake), except one check that real
processes exit with the same code for the same mistake, and quickly.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.__main__ as bench_main
import features.__main__ as features_main
import scoring.pool
import simulation.__main__ as simulation_main
import training.__main__ as training_main
from bench.cli import bench_parser
from features.cli import EXIT_CODES, day, mlflow_output, positive, registry_notes_held_back

ROOT = Path(__file__).resolve().parents[1]
NOT_ISO = ["2025-12", "31/12/2025", "01/02/2025", "2025/06/30", "2025-02-30"]


def _script(name: str):
    """train.py or score.py, loaded from the project's root as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_py, score_py = _script("train"), _script("score")


@pytest.fixture
def nothing_heavy(monkeypatch):
    """The first step of each CLI after its arguments fails the test: a refusal must come before it."""
    def heavy(*_, **__):
        raise AssertionError("the command went past its arguments")

    monkeypatch.setattr(train_py, "mlflow_output", heavy)  # train.py: then mlflow, the config, the data
    monkeypatch.setattr(score_py, "mlflow_output", heavy)  # score.py: then the worker pool, the model, the data
    monkeypatch.setattr(scoring.pool, "worker_pool", heavy)
    monkeypatch.setattr(features_main, "load_extract", heavy)


def _refused(main, argv: list[str], capsys) -> str:
    """What `main(argv)` said on stderr when it stopped as a command used wrongly (exit code 2)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser of every CLI, subcommands included (bench: the options all benchmarks share)."""
    found = {"python train.py": train_py.parser(), "python score.py": score_py.parser(),
             "python -m features": features_main._parser(), "python -m simulation": simulation_main.build_parser(),
             "python -m training": training_main._parser(),
             "python -m bench NAME": bench_parser("NAME", "About.\n\nMore.", accounts=1, months=1, workers=1,
                                                  data=True)}
    for parser in list(found.values()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update({sub.prog: sub for sub in action.choices.values()})
    return found


# --- days ---------------------------------------------------------------------------------------------------
DATE_OPTIONS = [  # (CLI, its main, arguments before the date option, the option)
    ("train.py", train_py.main, ["--data", "{data}"], "--as-of-start"),
    ("train.py", train_py.main, ["--data", "{data}"], "--as-of-end"),
    ("train.py", train_py.main, ["--data", "{data}"], "--extracted-on"),
    ("score.py", score_py.main, ["--data", "{data}"], "--as-of"),
    ("score.py", score_py.main, ["--data", "{data}"], "--extracted-on"),
    ("features validate", features_main.main, ["validate", "{data}"], "--extracted-on"),
    ("features build", features_main.main, ["build", "{data}", "--out", "{out}", "--as-of", "2025-06-30"], "--as-of"),
    ("features build", features_main.main, ["build", "{data}", "--out", "{out}", "--as-of", "2025-06-30"],
     "--extracted-on"),
    ("simulation monthly", simulation_main.main, ["monthly", "{data}", "--out", "{out}"], "--snapshot"),
    ("training panel", training_main.main, ["panel", "{data}", "--out", "{out}"], "--as-of-start"),
    ("training panel", training_main.main, ["panel", "{data}", "--out", "{out}"], "--as-of-end"),
    ("training panel", training_main.main, ["panel", "{data}", "--out", "{out}"], "--extracted-on"),
]


def test_every_date_option_is_read_as_a_yyyy_mm_dd_day():
    dated = {(prog, a.option_strings[-1]) for prog, parser in _parsers().items() for a in parser._actions
             if a.type is day}
    assert dated == {("python train.py", "--as-of-start"), ("python train.py", "--as-of-end"),
                     ("python train.py", "--extracted-on"), ("python score.py", "--as-of"),
                     ("python score.py", "--extracted-on"), ("python -m features validate", "--extracted-on"),
                     ("python -m features build", "--as-of"), ("python -m features build", "--extracted-on"),
                     ("python -m simulation monthly", "--snapshot"), ("python -m training panel", "--as-of-start"),
                     ("python -m training panel", "--as-of-end"), ("python -m training panel", "--extracted-on")}
    undeclared = [(prog, a.option_strings) for prog, parser in _parsers().items() for a in parser._actions
                  if a.type is not day and any(w in " ".join(a.option_strings) for w in ("as-of", "extracted", "date"))]
    assert not undeclared, f"date options not read by features.cli.day: {undeclared}"


@pytest.mark.parametrize("text", NOT_ISO)
@pytest.mark.parametrize(("cli", "main", "before", "option"), DATE_OPTIONS,
                         ids=[f"{c}-{o}" for c, _, _, o in DATE_OPTIONS])
def test_a_date_not_written_yyyy_mm_dd_stops_the_command_before_anything_starts(cli, main, before, option, text,
                                                                                tmp_path, capsys, nothing_heavy):
    out = tmp_path / "out" / "features.parquet"
    argv = [a.format(data=tmp_path, out=out) for a in before] + [option, text]
    said = _refused(main, argv, capsys)
    why = "is not a calendar date" if text == "2025-02-30" else "is not a date written YYYY-MM-DD (e.g. 2025-12-31)"
    assert said.startswith(f"error: argument {option}: '{text}' {why}\n"), said
    assert not (tmp_path / "out").exists()


def test_a_day_is_passed_on_as_yyyy_mm_dd():
    assert day("2024-02-29") == "2024-02-29"
    args = score_py.parser().parse_args(["--data", ".", "--as-of", "2025-12-31", "--extracted-on", "2026-01-02"])
    assert (args.as_of, args.extracted_on) == ("2025-12-31", "2026-01-02")


# --- mistakes of use: exit code 2, before any work ------------------------------------------------------------
def test_the_same_path_mistake_gives_exit_code_2_in_every_cli(tmp_path, capsys, nothing_heavy):
    missing, a_file = tmp_path / "no" / "such", tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for data, why in ((missing, "does not exist"), (a_file, "is a file, not a directory")):
        for main, argv in ((train_py.main, ["--data", str(data)]), (score_py.main, ["--data", str(data)]),
                           (features_main.main, ["validate", str(data)]),
                           (features_main.main, ["build", str(data), "--as-of", "2025-06-30", "--out", "f.parquet"])):
            said = _refused(main, argv, capsys)
            assert why in said and "argument" in said, said
    for main, option in ((train_py.main, "--config"), (train_py.main, "--labels"), (score_py.main, "--config"),
                         (score_py.main, "--previous")):
        assert f"argument {option}: {missing} does not exist" in _refused(main, [option, str(missing)], capsys)
        assert f"argument {option}: {tmp_path} is a directory" in _refused(main, [option, str(tmp_path)], capsys)


def test_score_py_checks_its_arguments_before_the_worker_pool_starts(tmp_path, capsys, monkeypatch):
    class PoolStartError(Exception):
        pass

    def pool(*_, **__):
        raise PoolStartError

    monkeypatch.setattr(scoring.pool, "worker_pool", pool)
    monkeypatch.setattr(score_py, "mlflow_output", lambda verbose: None)  # tested below, with its settings restored
    for argv, said in ((["--model", str(tmp_path / "nothing")], f"model {tmp_path / 'nothing'} not found"),
                       (["--model", "models:/dynascore"], "names no version"),
                       (["--workers", "0"], "argument --workers: 0 must be at least 1"),
                       (["--chunk-size", "many"], "argument --chunk-size: 'many' is not a whole number"),
                       (["--as-of", "2025-12"], "argument --as-of: '2025-12'")):
        assert said in _refused(score_py.main, ["--data", str(tmp_path), *argv], capsys)
    with pytest.raises(PoolStartError):  # right arguments: the pool is the first thing to start
        score_py.main(["--data", str(tmp_path), "--model", str(tmp_path), "--as-of", "2025-12-31"])


def test_train_py_refuses_an_empty_as_of_range_and_a_config_day_not_yyyy_mm_dd(tmp_path, capsys, nothing_heavy):
    said = _refused(train_py.main, ["--as-of-start", "2025-06-30", "--as-of-end", "2025-01-31"], capsys)
    assert said.startswith("error: argument --as-of-start: 2025-06-30 is after --as-of-end 2025-01-31")
    config = tmp_path / "train.toml"
    config.write_text('[train]\nas_of_end = "2025/06/30"\n')
    from training.config import load_config

    with pytest.raises(ValueError, match=r"train.toml: \[train\] as_of_end: '2025/06/30' is not a date written"):
        train_py._config_days(load_config(config)[0], config)
    config.write_text("[train]\nas_of_end = 2025-06-30\n")  # a TOML date
    assert train_py._config_days(load_config(config)[0], config) == {"as_of_end": "2025-06-30"}


def test_counts_must_be_positive_whole_numbers():
    read = positive()
    assert read("3") == 3
    for text, said in (("0", "0 must be at least 1"), ("-2", "-2 must be at least 1"), ("2.5", "'2.5' is not")):
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            read(text)


def test_processes_exit_2_quickly_for_a_data_folder_that_does_not_exist(tmp_path):
    missing = str(tmp_path / "no")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for command in (["train.py", "--data", missing], ["score.py", "--data", missing],
                    ["-m", "features", "validate", missing]):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: argument {'DIR' if 'features' in command else '--data'}: data "
                                      f"directory {missing} does not exist"), done.stderr
        assert time.perf_counter() - t0 < 15, command  # no model, data or worker: the imports of argparse types


def test_bench_names_an_unknown_benchmark_with_exit_code_2(capsys):
    assert bench_main.main(["fly"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown benchmark 'fly'; choose one of simulate, features")


# --- help -----------------------------------------------------------------------------------------------------
def test_every_help_states_the_exit_codes_without_markup(capsys):
    for prog, parser in _parsers().items():
        text = parser.format_help()
        assert EXIT_CODES in text, prog
        assert "`" not in text and "issue" not in text.lower(), prog
    assert bench_main.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert EXIT_CODES in text and "`" not in text


def test_score_py_help_names_the_report_and_the_manifest_beside_the_scores():
    text = score_py.parser().format_help()
    assert "<name>.report.html" in text and "<name>.manifest.json" in text


# --- train.py's ending ------------------------------------------------------------------------------------------
def test_train_py_names_a_score_command_that_score_py_parses(tmp_path):
    data = tmp_path / "my data"
    data.mkdir()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = train_py.parser().parse_args(["--data", str(data), "--extracted-on", "2025-12-31", "--tracking-uri", uri])
    words = shlex.split(train_py.score_command("models:/dynascore/3", args, uri))
    assert words[:2] == ["python", "score.py"]
    scored = score_py.parser().parse_args(words[2:])
    assert (scored.model, scored.data, scored.extracted_on, scored.tracking_uri) == \
        ("models:/dynascore/3", data, "2025-12-31", uri)
    demo = train_py.parser().parse_args([])
    assert train_py.score_command("models:/dynascore/1", demo, "sqlite:///mlflow.db") == \
        "python score.py --model models:/dynascore/1"


# --- mlflow's own output ---------------------------------------------------------------------------------------
@pytest.fixture
def mlflow_settings(monkeypatch):
    """mlflow_output sets variables and a logger level: both put back after the test."""
    for name in ("MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"):
        monkeypatch.delenv(name, raising=False)
    import mlflow  # noqa: F401  (its import configures its loggers; the test changes them after)

    logger = logging.getLogger("mlflow")
    level = logger.level
    yield
    logger.setLevel(level)


def test_mlflow_says_only_warnings_unless_verbose(mlflow_settings, capsys):
    from mlflow.utils.logging_utils import eprint

    for verbose in (False, True):
        mlflow_output(verbose)
        store = logging.getLogger("mlflow.store.db.utils")  # where a new store's tables are announced
        store.info("Creating initial MLflow database tables...")
        store.warning("a warning of mlflow")
        with registry_notes_held_back():
            eprint("Successfully registered model 'dynascore'.")
            eprint("Registered model 'dynascore' already exists. Creating a new version of this model...")
            eprint("Created version '2' of model 'dynascore'.")
            print("a warning of someone else", file=sys.stderr)
        said = capsys.readouterr().err
        assert "a warning of someone else" in said and "a warning of mlflow" in said
        for chatter in ("Creating initial MLflow database tables", "Successfully registered model",
                        "already exists. Creating a new version", "Created version"):
            assert (chatter in said) is verbose, (verbose, chatter, said)
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == str(verbose).lower()
