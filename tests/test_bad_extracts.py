"""A corpus of bad extracts, each built in code from one small valid world, run through the input checks of
the nightly job (`scoring.job.run`), of training and of `python -m features validate` (both `load_extract`).

For every case: no traceback (only the contract's or the job's own error), no output at or beside --out,
and the three agree -- all refuse, naming the table and column, or all accept. A few go through the CLIs.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.contract import CORE_TABLES, ContractError
from features.extract_manifest import control_totals, load_extract
from features.targets import LabelConfig
from scoring.job import ScoreError, ScoreRequest, run
from simulation.generate import Request, generate
from training.config import TrainConfig
from training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
TABLES = (*CORE_TABLES, "macro")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "clean"
    generate(out, Request(900, 18, seed=5), progress=False)
    return out


@pytest.fixture(scope="module")
def clean(world) -> dict[str, pd.DataFrame]:
    return {name: _read(world, name) for name in TABLES}


@pytest.fixture(scope="module")
def extraction(world) -> str:
    return json.loads((world / "_manifest.json").read_text())["extraction_date"]


@pytest.fixture(scope="module")
def bundle(world, tmp_path_factory) -> Path:
    cfg = TrainConfig(targets=("default",), n_boot=10, num_boost_round=30, valid_months=2, test_months=1,
                      labels=LabelConfig(default_months=2))
    result = train(load_extract(world), cfg, progress=lambda _: None)
    return result.bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name if (folder / name).is_dir() else folder / f"{name}.parquet"
    return pq.read_table(path).to_pandas(date_as_object=False)


def _write(folder: Path, tables: dict[str, pd.DataFrame], manifest: dict) -> Path:
    """Each keyed table as two parts split by account id (so chunks and parts differ), macro as one file."""
    folder.mkdir(parents=True)
    for name, frame in tables.items():
        if name == "macro" or "account_id" not in frame:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
            continue
        (folder / name).mkdir()
        ids = frame["account_id"]
        cut = ids.dropna().median() if ids.notna().any() else 0
        low = (ids <= cut).fillna(True)
        for i, part in enumerate((frame[low], frame[~low])):
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / name / f"part-{i}.parquet")
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    return folder


# ------------------------------------------------------------------------------------------ the corpus
# each case: (what it breaks, the change to the clean tables, the words every refusal must hold)


def _set(table: str, column: str, value, rows=slice(0, 3)) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        frame = t[table]
        if isinstance(value, str):
            frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value
    return change


def _date(table: str, column: str, day: str, rows=slice(0, 3)) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        frame = t[table]
        if column not in frame:
            frame[column] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms]")
        frame[column] = frame[column].astype("datetime64[ms]")
        frame.loc[frame.index[rows], column] = pd.Timestamp(day)
    return change


def _drop_accounts(where: str) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        ids = t["accounts"]["account_id"].sort_values()
        gone = ids.iloc[:20] if where == "first" else ids.iloc[-20:]
        t["accounts"] = t["accounts"][~t["accounts"]["account_id"].isin(gone)]
    return change


def _move_rows(table: str, to_id: int, n: int = 4) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        t[table].loc[t[table].index[:n], "account_id"] = to_id
    return change


def _repeat_bill_across_accounts(t: dict) -> None:
    bills = t["bills"]
    bills.loc[bills.index[-1], "bill_id"] = bills["bill_id"].iloc[0]  # the first account's bill id, on the last


def _repeat_bill_within_account(t: dict) -> None:
    bills = t["bills"]
    bills.loc[bills.index[1], "bill_id"] = bills["bill_id"].iloc[0]


def _drop_column(table: str, column: str) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        t[table] = t[table].drop(columns=[column])
    return change


def _nulls(table: str, column: str, n: int = 3) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        frame = t[table]
        kind = frame[column].dtype
        frame[column] = frame[column].astype("Int64") if kind.kind in "iu" else frame[column]
        frame.loc[frame.index[:n], column] = None
    return change


def _payment_of_other_account(t: dict) -> None:
    pay, bills = t["payments"], t["bills"]
    pay.loc[pay.index[0], "bill_id"] = bills["bill_id"].iloc[-1]


def _closed_before_its_last_bill(t: dict) -> None:
    span = t["bills"].groupby("account_id")["statement_date"].agg(["min", "max"])
    account = span.index[span["max"] > span["min"]][0]  # an account with statements on two days at least
    rows = (t["accounts"]["account_id"] == account).to_numpy().nonzero()[0]
    _date("accounts", "close_date", str(span.loc[account, "min"]), rows)(t)


def _empty(table: str) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        t[table] = t[table].iloc[:0]
    return change


def _time_of_day(t: dict) -> None:
    t["payments"]["payment_date"] = t["payments"]["payment_date"].astype("datetime64[ms]")
    t["payments"].loc[t["payments"].index[:2], "payment_date"] += pd.Timedelta(hours=13)


def _time_zone(t: dict) -> None:
    t["payments"]["payment_date"] = pd.to_datetime(t["payments"]["payment_date"]).dt.tz_localize("Asia/Shanghai")


E = "{extraction}"  # replaced by the world's extraction date in messages
REFUSED = [
    ("payment after extraction", _date("payments", "payment_date", "2031-05-01"),
     "payments.payment_date is after the extraction date " + E),
    ("statement after extraction", lambda t: (_date("bills", "statement_date", "2025-03-01", slice(5, 6))(t),
                                              _date("bills", "due_date", "2025-03-25", slice(5, 6))(t)),
     "bills.statement_date is after the extraction date"),
    ("limit change after extraction", _date("limits", "effective_date", "2029-02-01"),
     "limits.effective_date is after the extraction date"),
    ("opening after extraction", _date("accounts", "open_date", "2028-02-01", slice(0, 1)),
     "accounts.open_date is after the extraction date"),
    ("conversion after extraction", _date("bills", "converted_date", "2027-06-30", slice(2, 3)),
     "bills.converted_date is after the extraction date"),
    ("charge-off after extraction", _date("accounts", "charge_off_date", "2031-01-01", slice(3, 5)),
     "accounts.charge_off_date is after the extraction date"),
    ("closing after extraction", _date("accounts", "close_date", "2031-01-01", slice(3, 5)),
     "accounts.close_date is after the extraction date"),
    ("due centuries ahead", _date("bills", "due_date", "2230-01-25", slice(4, 5)),
     "bills.due_date is more than 60 months after the extraction date"),
    ("charge-off before opening", _date("accounts", "charge_off_date", "2001-01-01", slice(0, 2)),
     "accounts.charge_off_date is before accounts.open_date"),
    ("closing before opening", _date("accounts", "close_date", "2001-01-01", slice(0, 2)),
     "accounts.close_date is before accounts.open_date"),
    ("statement after closing", _closed_before_its_last_bill,
     "bills.statement_date is after its account's accounts.close_date"),
    ("payment long before its statement", _date("payments", "payment_date", "2001-03-01", slice(0, 2)),
     "payments.payment_date is more than 31 days before its bill's statement_date"),
    ("bills above the accounts' range", _move_rows("bills", 10**9), "bills.account_id is not in accounts.account_id"),
    ("bills below the accounts' range", _move_rows("bills", -5), "bills.account_id is not in accounts.account_id"),
    ("payments above the range", _move_rows("payments", 10**9), "payments.account_id is not in accounts.account_id"),
    ("limits above the range", _move_rows("limits", 10**9), "limits.account_id is not in accounts.account_id"),
    ("accounts missing at the low edge", _drop_accounts("first"), "bills.account_id is not in accounts.account_id"),
    ("accounts missing at the high edge", _drop_accounts("last"), "bills.account_id is not in accounts.account_id"),
    ("bills null account_id", _nulls("bills", "account_id"), "bills.account_id is null"),
    ("payments null account_id", _nulls("payments", "account_id"), "payments.account_id is null"),
    ("limits null account_id", _nulls("limits", "account_id"), "limits.account_id is null"),
    ("payments null bill_id", _nulls("payments", "bill_id"), "payments.bill_id is null"),
    ("accounts null customer_id", _nulls("accounts", "customer_id"), "accounts.customer_id is null"),
    ("accounts null account_id", _nulls("accounts", "account_id"), "accounts.account_id is null"),
    ("accounts without account_id", _drop_column("accounts", "account_id"), "accounts.account_id is missing"),
    ("accounts without customer_id", _drop_column("accounts", "customer_id"), "accounts.customer_id is missing"),
    ("bills without due_date", _drop_column("bills", "due_date"), "bills.due_date is missing"),
    ("bill_id repeated across accounts", _repeat_bill_across_accounts, "bills.bill_id is duplicated"),
    ("bill_id repeated within an account", _repeat_bill_within_account, "bills.bill_id is duplicated"),
    ("payment of another account's bill", _payment_of_other_account, "payments."),
    ("payment of an unknown bill", _set("payments", "bill_id", 10**12, slice(0, 2)),
     "payments.bill_id is not in bills.bill_id"),
    ("negative amount due", _set("bills", "amount_due", -5.0), "bills.amount_due is negative or not finite"),
    ("infinite payment", _set("payments", "amount", float("inf"), slice(0, 1)),
     "payments.amount is negative or not finite"),
    ("minimum above amount", _set("bills", "min_due", 1e9, slice(0, 2)), "bills.min_due is greater than"),
    ("due before statement", _date("bills", "due_date", "2000-01-01", slice(0, 1)),
     "bills.due_date is before bills.statement_date"),
    ("unknown product", _set("accounts", "product", "mortgage", slice(0, 2)), "accounts.product is not one of"),
    ("negative grace", _set("accounts", "grace_days", -3, slice(0, 2)), "accounts.grace_days is negative"),
    ("zero loan term", _set("accounts", "loan_term", 0, slice(0, 1)), "accounts.loan_term is zero or negative"),
    ("a time of day in payment dates", _time_of_day, "payments.payment_date is not a calendar date"),
    ("duplicate account", lambda t: t.update(accounts=pd.concat([t["accounts"], t["accounts"].iloc[:1]])),
     "accounts.account_id is duplicated"),
    ("duplicate limit change", lambda t: t.update(limits=pd.concat([t["limits"], t["limits"].iloc[:1]])),
     "limits.(account_id, effective_date) is duplicated"),
    ("macro month not a first day", _date("macro", "month", "2024-03-15", slice(0, 1)),
     "macro.month is not the first day of a month"),
    ("empty accounts", _empty("accounts"), "bills.account_id is not in accounts.account_id"),
]
ACCEPTED = [
    ("placeholder charge-off", _date("accounts", "charge_off_date", "9999-12-31", slice(0, 40))),
    ("placeholder closing", _date("accounts", "close_date", "9999-12-31", slice(0, 40))),
    ("placeholder conversion", _date("bills", "converted_date", "9999-12-31", slice(0, 40))),
    ("time-zone-aware payment dates", _time_zone),
]


def _case(tmp_path: Path, clean: dict, extraction: str, change, manifest: dict | None = None) -> Path:
    tables = {name: frame.copy() for name, frame in clean.items()}
    change(tables)
    return _write(tmp_path / "data", tables, manifest or {"extraction_date": extraction})


def _three(data: Path, bundle: Path, out: Path) -> dict[str, str | None]:
    """Each entry point's refusal (its message), or None when it accepts; anything else fails the test."""
    said = {}
    try:
        run(ScoreRequest(data, out, model=str(bundle), workers=1, chunk_size=250))
        said["score"] = None
    except ScoreError as exc:
        said["score"] = str(exc)
    for name, keywords in (("train", {"optional": ("macro", "truth")}),
                           ("validate", {"require": CORE_TABLES, "optional": ("macro",)})):
        try:
            load_extract(data, **keywords)
            said[name] = None
        except ContractError as exc:
            said[name] = str(exc)
    return said


@pytest.mark.parametrize(("case", "change", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_every_entry_point_refuses_a_bad_extract_and_writes_nothing(case, change, words, clean, extraction, bundle,
                                                                    tmp_path):
    data = _case(tmp_path, clean, extraction, change)
    out = tmp_path / "out" / "scores.parquet"
    said = _three(data, bundle, out)
    words = words.replace(E, extraction)
    for name, message in said.items():
        assert message is not None, f"{name} accepted: {case}"
        assert words in message, f"{name} said: {message}"
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize(("case", "change"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_what_the_contract_accepts_every_entry_point_accepts(case, change, clean, extraction, bundle, tmp_path):
    data = _case(tmp_path, clean, extraction, change)
    said = _three(data, bundle, tmp_path / "out" / "scores.parquet")
    assert said == {"score": None, "train": None, "validate": None}
    assert load_extract(data).extraction_date == pd.Timestamp(extraction)


def test_control_totals_refuse_a_truncated_or_altered_extract(clean, extraction, world, bundle, tmp_path):
    totals = control_totals(world, TABLES)
    for n, change in enumerate((lambda t: t.update(payments=t["payments"].iloc[:-7]),
                                _set("payments", "amount", 1e-2 + 1.0, slice(0, 1)))):
        data = _case(tmp_path / str(n), clean, extraction, change,
                     {"extraction_date": extraction, "control_totals": totals})
        said = _three(data, bundle, tmp_path / str(n) / "out" / "scores.parquet")
        assert all(m is not None and m.startswith("payments") and "stated in _manifest.json" in m
                   for m in said.values()), said


def test_the_extraction_date_stated_twice_must_agree(clean, extraction, bundle, tmp_path):
    data = _case(tmp_path, clean, extraction, lambda t: None)
    with pytest.raises(ScoreError, match="--extracted-on 2020-01-31 differs from extraction_date"):
        run(ScoreRequest(data, tmp_path / "o.parquet", model=str(bundle), workers=1, extracted_on="2020-01-31"))
    with pytest.raises(ContractError, match="not a date written YYYY-MM-DD"):
        load_extract(data, extracted_on="31/12/2025")


def test_without_a_stated_date_it_is_derived_from_events_never_after_today(clean, bundle, tmp_path):
    data = _case(tmp_path, clean, "", _date("payments", "payment_date", "2999-01-01", slice(0, 1)), manifest={"x": 1})
    with pytest.raises(ContractError, match=r"payments.payment_date is after the extraction date \d{4}-\d{2}-\d{2} "
                       r"\(derived from the latest event date\) in 1 of"):
        load_extract(data)
    shutil.rmtree(data)


def test_the_clis_refuse_without_a_traceback(clean, extraction, bundle, tmp_path):
    data = _case(tmp_path, clean, extraction, _move_rows("bills", 10**9))
    for command in ([sys.executable, "score.py", "--model", str(bundle), "--data", str(data), "--workers", "1",
                     "--out", str(tmp_path / "o" / "s.parquet")],
                    [sys.executable, "-m", "features", "validate", str(data)],
                    [sys.executable, "train.py", "--data", str(data), "--tracking-uri",
                     f"sqlite:///{tmp_path / 'mlflow.db'}", "--reports", str(tmp_path / "reports")]):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: bills.account_id is not in accounts.account_id in 4 of")
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_corpus_holds_at_least_forty_extracts():
    assert len(REFUSED) + len(ACCEPTED) + 2 >= 40  # with the two control-total cases


def test_part_files_with_different_date_types_are_named(clean, extraction, bundle, tmp_path):
    data = _case(tmp_path, clean, extraction, lambda t: None)
    part = data / "payments" / "part-1.parquet"
    table = pq.read_table(part)
    i = table.schema.get_field_index("payment_date")
    days = table.column(i).cast(pa.timestamp("s")).cast(pa.date32())  # date32 here, a timestamp in part-0
    pq.write_table(table.set_column(i, "payment_date", days), part)
    said = _three(data, bundle, tmp_path / "out" / "scores.parquet")
    for message in said.values():
        assert message is not None and "part files disagree on the type of payment_date (timestamp[ms] in " \
            "part-0.parquet, date32[day] in part-1.parquet)" in message, message
