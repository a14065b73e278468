"""The evidence gathered chunk by chunk: a book larger than memory is read a range of customers at a time.

The score files' rows are few columns and fit; the histories they are joined with (bills, payments, the
synthetic truth) may not. So the book is split as the nightly job splits it (scoring.chunks: account-id
ranges that never separate a customer's accounts), and each chunk, in a worker process, reads its own
histories and returns its rows' outcomes and segments, its month-end snapshots and the replayed features of
its sampled accounts. The parent only adds the pieces up: the result does not depend on the chunk size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.builders import Prepared, to_days
from features.contract import ContractError, load_tables
from features.extraction import Extraction
from features.targets import LabelConfig
from models.bundle import Bundle
from review.evidence import ReviewError, with_oracle, with_outcomes
from review.replay import features_of, predictions, scorecards
from scoring.chunks import Portfolio, plan_chunks, survey
from scoring.pool import worker_pool
from validation.portfolio import portfolio_frame

CHUNK_ACCOUNTS = 150_000  # accounts read at once by a worker: bounds its memory


@dataclass(frozen=True)
class Chunk:
    """One worker's share: its account range, the keys of its score rows and the whole rows of its sample."""

    data: Path
    lo: int
    hi: int
    keys: pd.DataFrame  # account_id, as_of, dpd_now of the chunk's score rows: what the outcomes need
    sample: pd.DataFrame  # the score rows of the chunk's sampled accounts, whole
    sample_at: np.ndarray  # their positions among `keys`
    shared: Shared


@dataclass(frozen=True)
class Shared:
    extraction: Extraction | None
    first_day: pd.Timestamp
    labels: LabelConfig
    targets: tuple[str, ...]
    months: tuple[pd.Timestamp, ...]  # the month-end snapshots of the book (portfolio)
    sample: np.ndarray  # the sampled account ids whose features are replayed
    model: Bundle
    champion: Bundle | None
    truth: bool  # the data hold the synthetic truth


@dataclass
class Gathered:
    rows: pd.DataFrame
    exclusions: pd.DataFrame
    portfolio: pd.DataFrame
    features: pd.DataFrame


def surveyed(data: Path, extraction: Extraction | None) -> Portfolio:
    """The book's ids, first day and extraction (stated, or derived from the events), read without the
    histories: what the window is chosen from and the chunks are cut by."""
    book = survey(data, extraction)
    if book.extraction is None:
        raise ReviewError(f"{data} holds no event: nothing to review")
    return book


def sample_accounts(rows: pd.DataFrame, targets, accounts: int, seed: int = 0) -> np.ndarray:
    """A seeded sample of the scored accounts (all of them when fewer): the same whatever the rows' order."""
    scored = rows[rows[[f"p_{t}" for t in targets]].notna().any(axis=1)]
    ids = np.unique(scored["account_id"].to_numpy())
    if len(ids) > accounts:
        ids = np.sort(np.random.default_rng(seed).choice(ids, accounts, replace=False))
    return ids


KEYS = ["account_id", "as_of", "dpd_now"]  # what a worker reads of each score row


def gather(data: Path, book: Portfolio, rows: pd.DataFrame, shared: Shared, *, workers: int = 2,
           chunk_accounts: int = CHUNK_ACCOUNTS) -> Gathered:
    """Every chunk's evidence, the rows in their given order, whatever the chunk size and number of workers.

    A worker is sent the keys of its rows (and its sampled accounts' rows whole), and sends back only the
    columns it adds: the wide rows never cross a process boundary."""
    ids = rows["account_id"].to_numpy(np.int64)
    outside = ~np.isin(ids, book.account_id)
    if outside.any():
        raise ReviewError(f"{outside.sum():,} scored rows name accounts that {data} does not hold (account_id "
                          f"{', '.join(map(str, np.unique(ids[outside])[:3]))}): review the score files with the "
                          "data they were scored from, or a later extract of it")
    ranges = list(plan_chunks(book.account_id, book.customer_id, chunk_accounts, book.boundaries))
    of_chunk = np.searchsorted(np.array([hi for _, hi in ranges], np.int64), ids, side="right")
    order = np.argsort(of_chunk, kind="stable")  # rows chunk by chunk, each chunk's in the rows' order
    bounds = np.searchsorted(of_chunk[order], np.arange(len(ranges) + 1))
    sampled = np.isin(ids, shared.sample) & rows[[f"p_{t}" for t in shared.targets]].notna().any(axis=1).to_numpy()
    keys = rows[KEYS]
    chunks = []
    for k, (lo, hi) in enumerate(ranges):
        at = order[bounds[k]:bounds[k + 1]]
        if not len(at):
            continue
        mine = np.flatnonzero(sampled[at])
        chunks.append(Chunk(data, int(lo), int(hi), keys.iloc[at].reset_index(drop=True),
                            rows.iloc[at[mine]].reset_index(drop=True), mine, shared))
    if workers > 1 and len(chunks) > 1:
        with worker_pool(min(workers, len(chunks))) as pool:  # spawned: no forked OpenMP or numba state
            parts = list(pool.map(gather_chunk, chunks))
    else:
        parts = [gather_chunk(c) for c in chunks]
    added, exclusions, snapshots, features = (pd.concat([p[i] for p in parts], ignore_index=True) for i in range(4))
    back = np.empty(len(rows), np.int64)  # the concatenated chunks' rows, put back in the rows' order
    back[order] = np.arange(len(rows))
    rows = rows.assign(**{c: added[c].array.take(back) for c in added.columns})
    if len(features):  # the scorecards in one batch: their matrix products' last bits follow the batch's size
        features = features.sort_values(["account_id", "as_of"], kind="stable", ignore_index=True)
        features = pd.concat([features, scorecards(shared.model, features)], axis=1)
    if len(exclusions):  # each chunk counted its own: added up, in one order
        exclusions = exclusions.groupby(["reason", "as_of"], as_index=False, sort=True)["rows"].sum()
    return Gathered(rows, exclusions, snapshots, features)


def gather_chunk(chunk: Chunk) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One chunk: the columns its rows gain (outcomes, segments, the oracle), its exclusions, its month-end
    snapshots and its replayed sample."""
    s = chunk.shared
    optional = ("macro", "truth") if s.truth else ("macro",)
    try:
        tables = load_tables(chunk.data, account_range=(chunk.lo, chunk.hi), extraction=s.extraction,
                             optional=optional)
    except ContractError as exc:  # a plain message: custom exceptions cross processes badly
        raise ReviewError(str(exc)) from None
    prep = Prepared(tables)
    prep.first_day = int(to_days(np.array([s.first_day.to_datetime64()]))[0])  # the data's, not the chunk's
    rows, exclusions = with_outcomes(chunk.keys, prep, s.labels)
    rows = with_oracle(rows, tables.truth if s.truth else None, list(s.targets))
    added = rows.drop(columns=KEYS)
    months = [m for m in s.months if m <= prep.extraction]
    snapshots = portfolio_frame(prep, months) if len(prep.account_id) else pd.DataFrame()
    sample = chunk.sample.assign(**{c: added[c].array.take(chunk.sample_at) for c in added.columns})
    return added, exclusions, snapshots, _replayed(prep, sample, s)


def _replayed(prep: Prepared, sample: pd.DataFrame, s: Shared) -> pd.DataFrame:
    """The sampled accounts' rows with their rebuilt features and what the models give on them."""
    if not len(sample):
        return pd.DataFrame()
    X = features_of(prep, s.model, sample)
    sample = sample.drop(columns=[c for c in sample.columns if c in X.columns])  # dpd_now: the feature's, equal
    parts = [sample, X, predictions(s.model, X, "replayed_")]
    if s.champion is not None:
        parts.append(predictions(s.champion, features_of(prep, s.champion, sample), "champion_"))
    return pd.concat(parts, axis=1)
