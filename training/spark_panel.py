"""The training panel on Spark, and its reading back for the fit on one machine.

Build (`build_panel_spark`): the tables are grouped by hash bucket of the customer (features.spark_groups);
each group is checked by the contract and turned into panel rows by the same `features.panel.build_panel` the
local trainer calls. What the rows depend on beyond an account's own history -- the as-of range, the first
day, the extraction date, the economy (macro) -- is decided once for the whole extract (its manifest, one
aggregate of each table's date columns) and sent to every group: a group's own first bill or last event
would move its as-of months and label windows. So every group's rows are exactly the local panel's rows for
its accounts. Spark writes them as a Parquet folder (keys, the features, one column per target) into a hidden
folder beside the target, with `_panel.json` (the counts the groups return by an accumulator, the feature
names, the catalog version, the label config, the as-of range), renamed into place: a reader sees the old
folder or the whole new one. `python -m training panel` is its command.

Read (`read_panel`): the folder as a `features.panel.Panel` in the local panel's row order, so the models
trained from it are the ones trained from the local panel; optionally a stable hash sample of customers,
filtered while reading.
"""
from __future__ import annotations

import json
import pickle
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.atomic_folder import hidden_beside, swap_in
from features.catalog import Catalog, default_catalog
from features.contract import CORE_TABLES, ContractError, Problem, validate
from features.extraction import Extraction
from features.panel import Panel, build_panel, month_ends
from features.problem_tally import ProblemTally
from features.stable_hash import account_uniforms
from features.targets import TARGET_NAMES, LabelConfig
from training.config import TrainConfig

INFO = "_panel.json"
FORMAT = 1
KEYS = ("account_id", "customer_id", "as_of")
# accounts per customer group by default: a group's panel rows are held whole before they leave (about 36
# as-of months x 125 float64 columns: some 350 MB for 10,000 accounts)
GROUP_ACCOUNTS = 10_000
SAMPLE_SALT = "dynascore-panel-customers"


class PanelFolderError(ValueError):
    """A panel folder that cannot be trained on as asked (missing, or built for another catalog or config)."""


@dataclass(frozen=True)
class PanelSpec:
    """What every group is given: the whole extract's dates and the config's panel settings."""

    start: pd.Timestamp
    end: pd.Timestamp
    first_day: int  # days since 1970-01-01
    extraction: Extraction
    labels: LabelConfig
    month_end_share: float
    seed: int


def build_panel_spark(spark, data: Path, cfg: TrainConfig, catalog: Catalog | None = None,
                      out_dir: Path | None = None, buckets: int | None = None, *,
                      extracted_on: str | None = None) -> dict:
    """Build the training panel of the extract in `data` on Spark and write it to `out_dir` (default
    `<data>/../panel`); return what `_panel.json` holds. `buckets`: customer groups (default: about
    GROUP_ACCOUNTS accounts each)."""
    from features.extract_manifest import check_control_totals
    from features.spark_checks import repeated_bill_ids
    from features.spark_groups import group_results, grouped, map_groups, shared_tables, table_sources
    from features.spark_tables import account_rows

    started = time.perf_counter()
    data = Path(data)
    catalog = catalog or default_catalog()
    out = Path(out_dir) if out_dir is not None else data.parent / "panel"
    problems = check_control_totals(data, sums=False)
    if problems:
        raise ContractError(problems)
    dates = extract_dates(spark, data, extracted_on)
    start, end = panel_range(data, cfg, dates)
    spec = PanelSpec(start, end, dates.first_day, dates.extraction, cfg.labels, float(cfg.month_end_share),
                     int(cfg.seed))
    if buckets is None:
        buckets = max(1, -(-account_rows(data) // GROUP_ACCOUNTS))
    groups, results = grouped(spark, data, buckets), group_results(spark)
    builder = _group_builder(spec, catalog, shared_tables(data), table_sources(data), results)
    rows = map_groups(groups, builder, _spark_schema(panel_schema(catalog.names)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_beside(out)
    try:
        rows.write.parquet(str(tmp))  # the one pass over the data: the groups' summaries come with it
        counts, written = _reduce(results.value, data, repeated_bill_ids(spark, data))
        if written == 0:
            raise ValueError(f"the panel of {data} has no row with a usable label between {start:%Y-%m-%d} and "
                             f"{end:%Y-%m-%d}: widen the as-of range")
        info = {"format": FORMAT, "data": str(data), "data_fingerprint": _data_fingerprint(spark, data),
                "catalog_version": catalog.version, "features": list(catalog.names), "targets": list(TARGET_NAMES),
                "label_config": asdict(cfg.labels), "as_of_start": f"{start:%Y-%m-%d}",
                "as_of_end": f"{end:%Y-%m-%d}", "month_end_share": spec.month_end_share, "seed": spec.seed,
                "extraction": dates.extraction.to_dict(), "rows": written,
                "counts": counts.replace({np.nan: None}).to_dict("records"),
                "run": {"engine": "spark", "buckets": groups.count, "laid_out": groups.folder is not None,
                        "master": spark.sparkContext.master,
                        "seconds": round(time.perf_counter() - started, 1)}}
        (tmp / INFO).write_text(json.dumps(info, indent=1))
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


@dataclass(frozen=True)
class ExtractDates:
    """The whole extract's dates a group's rows depend on, as `features.builders.Prepared` finds them on
    the whole tables."""

    first_due: int  # the first due day (days since 1970-01-01); the first opening when there is no bill
    first_day: int  # the first opening or due day
    extraction: Extraction


def extract_dates(spark, data: Path, extracted_on: str | None = None) -> ExtractDates:
    """The first due and opening days and the extraction date (stated, else the latest event that is no
    placeholder, never after today: as the contract derives it), each table's columns aggregated by Spark."""
    from pyspark.sql import functions as sf

    from features.extract_manifest import stated_extraction
    from features.extraction import EVENT_COLUMNS, PLACEHOLDER_DATES, resolve
    from features.spark_tables import read_table

    stated = stated_extraction(data, extracted_on)
    lows, latest = {}, []
    for name, events in EVENT_COLUMNS.items():
        frame = read_table(spark, data, name)
        first = {"accounts": "open_date", "bills": "due_date"}.get(name)
        aggs = [sf.min(first).alias(first)] if first else []
        if stated is None:
            placeholders = [sf.lit(d).cast("date") for d in PLACEHOLDER_DATES]
            aggs += [sf.max(sf.when(~sf.to_date(c).isin(*placeholders), sf.col(c))).alias(c)
                     for c in events if c in frame.columns]
        if aggs:
            row = frame.agg(*aggs).first().asDict()
            lows.update({k: _day(v) for k, v in row.items() if k == first})
            latest += [pd.Timestamp(v) for k, v in row.items() if k != first and v is not None]
    extraction = resolve(stated, max(latest) if latest else None)
    if extraction is None:
        raise ContractError([Problem("data", "", f"{data} holds no event: there is no extraction date to build "
                                     "labels against", hint="State it with --extracted-on or in _manifest.json.")])
    known = [d for d in lows.values() if d is not None]
    if not known:
        raise ContractError([Problem("accounts", "", f"{data} holds no account", hint="Write the accounts table.")])
    first_day = min(known)
    return ExtractDates(lows["due_date"] if lows.get("due_date") is not None else first_day, first_day, extraction)


def _day(value) -> int | None:
    return None if value is None else int(np.datetime64(pd.Timestamp(value).date(), "D").astype(np.int64))


def panel_range(data: Path, cfg: TrainConfig, dates: ExtractDates) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The local trainer's as-of range (training.trainer.as_of_range) from the whole extract's dates and the
    manifest's first as-of day."""
    from features.extract_manifest import read_extract_manifest
    from training.trainer import as_of_range

    manifest = read_extract_manifest(data)
    stated = None if manifest is None or manifest.as_of_from is None else pd.Timestamp(manifest.as_of_from)
    start, end = as_of_range(dates.first_due, dates.extraction.day, cfg, stated)
    if not month_ends(start, end):
        raise ValueError(f"no month end between {start:%Y-%m-%d} and {end:%Y-%m-%d}: widen the as-of range")
    return start, end


def panel_schema(features: list[str]) -> pa.Schema:
    """The panel's columns: keys, the features, one label per target (NaN: not usable)."""
    return pa.schema([pa.field("account_id", pa.int64()), pa.field("customer_id", pa.int64()),
                      pa.field("as_of", pa.date32()), *(pa.field(n, pa.float64()) for n in features),
                      *(pa.field(t, pa.float64()) for t in TARGET_NAMES)])


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _group_builder(spec: PanelSpec, catalog: Catalog, shared: dict, sources: dict, results):
    """The function each group's tables are mapped with."""
    def build(tables: dict, bucket: int) -> Iterator[pa.RecordBatch]:
        yield from _group_panel(tables, bucket, spec=spec, catalog=catalog, shared=shared, sources=sources,
                                results=results)

    return build


def _group_panel(tables: dict, bucket: int, *, spec: PanelSpec, catalog: Catalog, shared: dict, sources: dict,
                 results) -> Iterator[pa.RecordBatch]:
    """One bucket of customers, on an executor: its tables checked, its panel rows built with the whole
    extract's dates; the rows out, its counts (or its problems) to `results`. Numba runs one thread: Spark
    gives a task a core."""
    import numba

    from features.builders import Prepared

    numba.set_num_threads(1)
    try:
        tables = validate({**tables, **shared}, sources=sources, extraction=spec.extraction)
    except ContractError as exc:
        results.add({bucket: pickle.dumps({"problems": tuple(exc.problems)})})
        return
    prep = Prepared(tables)
    prep.extraction, prep.first_day = spec.extraction.day, spec.first_day
    panel = build_panel(prep, spec.start, spec.end, catalog, spec.labels, month_end_share=spec.month_end_share,
                        seed=spec.seed)
    frame = panel.frame
    account = frame["account_id"].to_numpy(np.int64)
    columns = [pa.array(account), pa.array(prep.customer_id[np.searchsorted(prep.account_id, account)]),
               pa.array(frame["as_of"].to_numpy().astype("datetime64[D]"), pa.date32()),
               *(pa.array(panel.values[j]) for j in range(len(panel.feature_names))),
               *(pa.array(frame[t].to_numpy(np.float64)) for t in TARGET_NAMES)]
    yield from pa.Table.from_arrays(columns, schema=panel_schema(catalog.names)).to_batches(max_chunksize=50_000)
    counts = panel.counts.assign(bad=[float(np.nansum(frame[t].to_numpy(np.float64))) if t in frame else 0.0
                                      for t in panel.counts["target"]]).drop(columns="bad_rate")
    results.add({bucket: pickle.dumps({"counts": counts.to_dict("records"), "rows": len(frame)})})


def _reduce(results: dict[int, bytes], data: Path, repeated: Problem | None) -> tuple[pd.DataFrame, int]:
    """The groups' counts added up as `build_panel` counts the whole panel (a target's bad rate: its bad rows
    over its usable rows), or the groups' problems (and `repeated`, the bill ids repeated over the whole
    table) refused as the contract refuses the whole tables."""
    problems, parts, written = ProblemTally(), [], 0
    for bucket in sorted(results):
        stats = pickle.loads(results[bucket])
        if "problems" in stats:
            problems.add(stats["problems"])
        else:
            parts.append(pd.DataFrame(stats["counts"]))
            written += stats["rows"]
    if repeated is not None:
        problems.replace(repeated)
    if problems:
        raise ContractError(problems.whole(data))
    counts = pd.concat(parts).groupby("target", sort=False).sum(numeric_only=True)
    order = [*TARGET_NAMES, *(t for t in counts.index if t not in TARGET_NAMES)]
    counts = counts.loc[[t for t in order if t in counts.index]].reset_index()
    bad_rate = np.where(counts["usable"] > 0, counts["bad"] / counts["usable"].clip(lower=1), np.nan)
    bad_rate[~counts["target"].isin(TARGET_NAMES).to_numpy()] = np.nan
    counts = counts.drop(columns="bad").assign(bad_rate=bad_rate)
    for c in ("in_population", "incomplete_window", "usable"):
        counts[c] = counts[c].astype(np.int64)
    return counts, written


def _data_fingerprint(spark, data: Path) -> str:
    """A short hash of the input files' contents (each part hashed by an executor): the bundle's name for
    the data it was trained on, the same for the same files wherever they lie."""
    from features.file_digest import fingerprint_of
    from features.spark_checks import file_digests

    return fingerprint_of(file_digests(spark, data, (*CORE_TABLES, "macro")))[:16]


# ---- reading a panel folder back, for the fit on one machine ----

def panel_info(folder: Path) -> dict:
    """The folder's `_panel.json`, or a PanelFolderError saying what is wrong."""
    folder = Path(folder)
    path = folder / INFO
    if not path.is_file():
        raise PanelFolderError(f"{folder} is not a panel folder: it has no {INFO} (build one with "
                               "python -m training panel DATA --out DIR)")
    info = json.loads(path.read_text())
    if info.get("format") != FORMAT:
        raise PanelFolderError(f"{path}: panel format {info.get('format')!r} is not {FORMAT}: rebuild the panel")
    return info


def check_panel(info: dict, cfg: TrainConfig, catalog: Catalog, folder: Path) -> None:
    """Refuse a panel built for another catalog or another label, as-of or seed setting than `cfg`: a model
    trained on it would not be the one the config and catalog describe."""
    why = []
    if info["catalog_version"] != catalog.version or info["features"] != list(catalog.names):
        gone = [n for n in info["features"] if n not in catalog.names]
        new = [n for n in catalog.names if n not in info["features"]]
        why.append(f"it was built with feature catalog {info['catalog_version']}, today's is {catalog.version}"
                   + (f" ({len(new)} feature(s) new, {len(gone)} gone)" if new or gone else ""))
    if info["label_config"] != asdict(cfg.labels):
        why.append(f"its label config {info['label_config']} is not the config's {asdict(cfg.labels)}")
    for key in ("as_of_start", "as_of_end"):
        if getattr(cfg, key) and str(getattr(cfg, key)) != info[key]:
            why.append(f"its {key} is {info[key]}, the config asks {getattr(cfg, key)}")
    if info["month_end_share"] != cfg.month_end_share:
        why.append(f"its month_end_share is {info['month_end_share']}, the config's {cfg.month_end_share}")
    elif cfg.month_end_share < 1 and info["seed"] != cfg.seed:
        why.append(f"its as-of days were drawn with seed {info['seed']}, the config's seed is {cfg.seed}")
    if why:
        raise PanelFolderError(f"{folder} does not fit this training: " + "; ".join(why) + ". Rebuild the panel.")


def read_panel(folder: Path, cfg: TrainConfig, catalog: Catalog | None = None,
               customers: float | None = None) -> Panel:
    """The panel folder as a Panel, rows in the local panel's order (as-of day, then account) so the fit is the
    one the local panel gives. `customers`: keep that share of the customers (a stable hash of the customer id,
    every account of a kept customer whole), filtered while reading, for a panel larger than memory."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    folder = Path(folder)
    catalog = catalog or default_catalog()
    info = panel_info(folder)
    check_panel(info, cfg, catalog, folder)
    if cfg.latent_state:
        raise PanelFolderError("latent_state = true needs the accounts' histories (its filter is fitted on their "
                               "monthly outcomes), which a panel folder does not hold: set it false or train from "
                               "--data")
    dataset = ds.dataset(str(folder), format="parquet")
    columns = [*KEYS, *info["features"], *info["targets"]]
    lacking = [c for c in columns if c not in dataset.schema.names]
    if lacking:
        raise PanelFolderError(f"{folder}: the parts lack column(s) {', '.join(lacking[:5])}: rebuild the panel")
    counts = pd.DataFrame(info["counts"]).astype({"bad_rate": np.float64})
    where = None
    if customers is not None:
        if not 0.0 < customers <= 1.0:
            raise ValueError(f"the share of customers must be in (0, 1], got {customers}")
        if customers < 1.0:
            kept = sample_customers(dataset, customers)
            where = pc.field("customer_id").isin(pa.array(kept, pa.int64()))
    table = dataset.to_table(columns=columns, filter=where)
    if where is not None:
        counts = pd.concat([counts, pd.DataFrame([{
            "target": f"(customers outside the {customers:g} sample: row left out)", "in_population": 0,
            "incomplete_window": 0, "usable": int(info["rows"]) - table.num_rows, "bad_rate": np.nan}])],
            ignore_index=True)
    if table.num_rows == 0:
        raise PanelFolderError(f"{folder}: no panel row is left to train on" +
                               (f" in the {customers:g} sample of customers: take a larger share" if where else ""))
    order = pc.sort_indices(table, [("as_of", "ascending"), ("account_id", "ascending")])
    table = table.take(order)
    names = info["features"]
    values = np.empty((len(names), table.num_rows), np.float64)
    for j, name in enumerate(names):
        values[j] = table.column(name).to_numpy()
    as_of = table.column("as_of").to_numpy().astype("datetime64[s]")
    labels = {t: table.column(t).to_numpy() for t in info["targets"]}
    account = table.column("account_id").to_numpy()
    return Panel.over(values, names, account, as_of, labels, counts)


def sample_customers(dataset, share: float) -> np.ndarray:
    """The customer ids of the panel whose stable hash falls below `share` (the same customers on every run and
    machine; a larger share keeps them and adds more). Only the customer column is read."""
    kept = []
    for batch in dataset.to_batches(columns=["customer_id"]):
        ids = np.unique(batch.column(0).to_numpy())
        kept.append(ids[account_uniforms(ids, SAMPLE_SALT) < share])
    return np.unique(np.concatenate(kept)) if kept else np.empty(0, np.int64)
