"""Counts over a scoring run, added up chunk by chunk: what the manifest and the run report show.

Only counts are kept (categories, flags, a histogram of score adjustments, limit actions by score band,
treatments by days past due), so the parent never holds the scored rows and the totals do not depend on
how the accounts were chunked.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

CATEGORIES = ("status", "limit_action", "collection_treatment")
FLAGS = ("early_warning", "control_cell", "adverse")
ADJUSTMENT_EDGES = np.arange(-200, 201, 10)  # points; moves beyond +-200 land in the outer bins
DPD_BUCKETS = (1, 3, 15, 30, 60, 90)  # lower edges of the days-past-due buckets of late accounts
NO_SCORE = "no score"  # the band of accounts outside the default model's scoring population


class Tally:
    def __init__(self, band_edges: list[float]) -> None:
        self.band_edges = sorted(band_edges)  # score band lower edges (policy's limit bands)
        self.categories = {k: Counter() for k in CATEGORIES}
        self.flags = Counter()
        self.adjustment = np.zeros(len(ADJUSTMENT_EDGES) + 1, dtype=np.int64)
        self.band_action: Counter = Counter()
        self.dpd_treatment: Counter = Counter()

    def add(self, table: pa.Table) -> None:
        col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
        for key in CATEGORIES:
            values, n = np.unique(col[key].astype(str), return_counts=True)
            self.categories[key].update(dict(zip([v or "(none)" for v in values], n.tolist(), strict=True)))
        for key in FLAGS:
            if key in col:
                self.flags[key] += int(np.count_nonzero(col[key]))
        adj = col["score_adjustment"]
        known = ~np.isnan(adj)
        self.flags["with_previous_score"] += int(known.sum())
        self.adjustment += np.bincount(np.searchsorted(ADJUSTMENT_EDGES, adj[known], side="right"),
                                       minlength=len(self.adjustment))
        score = col["score"].astype(np.float64)
        band = np.searchsorted(self.band_edges, score, side="right") - 1
        labels = np.array([self._band_label(i) for i in range(len(self.band_edges))] + [NO_SCORE], dtype=object)
        band = np.where(np.isnan(score), len(self.band_edges), np.clip(band, 0, None))  # charged off: no score
        self._pairs(self.band_action, labels[band], col["limit_action"])
        late = (col["dpd_now"] > 0) & (col["status"] != "charged_off")  # charged off: recovery, not collection
        bucket = np.searchsorted(DPD_BUCKETS, col["dpd_now"][late], side="right") - 1
        names = np.array([_dpd_label(i) for i in range(len(DPD_BUCKETS))], dtype=object)
        self._pairs(self.dpd_treatment, names[bucket], col["collection_treatment"][late])

    def merge(self, other: Tally) -> None:
        """Add another chunk's counts (the reduce step)."""
        for key in CATEGORIES:
            self.categories[key].update(other.categories[key])
        self.flags.update(other.flags)
        self.adjustment += other.adjustment
        self.band_action.update(other.band_action)
        self.dpd_treatment.update(other.dpd_treatment)

    @staticmethod
    def _pairs(counter: Counter, a: np.ndarray, b: np.ndarray) -> None:
        if len(a):
            keys, n = np.unique(np.char.add(np.char.add(a.astype(str), "|"), b.astype(str)), return_counts=True)
            counter.update(dict(zip(keys.tolist(), n.tolist(), strict=True)))

    def _band_label(self, i: int) -> str:
        lo = self.band_edges[i]
        hi = self.band_edges[i + 1] if i + 1 < len(self.band_edges) else None
        return f"{lo:.0f}+" if hi is None else f"{lo:.0f}-{hi - 1:.0f}"

    def summary(self) -> dict:
        """Plain JSON for the manifest."""
        def table(counter: Counter) -> dict:
            out: dict = {}
            for key, n in sorted(counter.items()):
                row, column = key.split("|", 1)
                out.setdefault(row, {})[column or "(none)"] = n
            return out

        return {
            "score_adjustment": {"edges": ADJUSTMENT_EDGES.tolist(), "counts": self.adjustment.tolist()},
            "limit_action_by_score_band": table(self.band_action),
            "collection_treatment_by_dpd": table(self.dpd_treatment),
        }


def _dpd_label(i: int) -> str:
    lo = DPD_BUCKETS[i]
    return f"{lo}+ DPD" if i + 1 == len(DPD_BUCKETS) else f"{lo}-{DPD_BUCKETS[i + 1] - 1} DPD"
