"""The pack's plots: matplotlib figures without pyplot, embedded by the Report as PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from validation.discrimination import tie_ranks
from validation.report import new_figure

POINTS = 2_000  # a curve drawn with more points than a figure has pixels only takes longer to draw


def thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """At most POINTS evenly spaced points of a curve, its ends kept."""
    n = len(arrays[0])
    if n <= POINTS:
        return arrays
    keep = np.unique(np.linspace(0, n - 1, POINTS).round().astype(np.int64))
    return tuple(a[keep] for a in arrays)


def tie_block_curves(y: np.ndarray, p: np.ndarray, ranks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Bads, goods and the prediction of every tie block, lowest first, counted from the pooled ranks
    (`tie_ranks`): the ROC, CAP and KS curves of millions of rows without sorting them again."""
    ranks = tie_ranks(p) if ranks is None else np.asarray(ranks, dtype=np.int64)
    blocks = int(ranks.max()) + 1
    bads = np.bincount(ranks, weights=y, minlength=blocks)
    goods = np.bincount(ranks, weights=1.0 - y, minlength=blocks)
    value = np.zeros(blocks)
    value[ranks] = p
    used = (bads + goods) > 0
    return {"bads": bads[used], "goods": goods[used], "p": value[used]}


def roc_cap_figure(y: np.ndarray, p: np.ndarray, name: str, ranks: np.ndarray | None = None) -> Figure:
    """ROC and CAP side by side: the two curves reviewers read, with the diagonal of a random model. Tied
    predictions enter together (one point per tie block), riskiest first."""
    c = tie_block_curves(y, p, ranks)
    bads, goods = c["bads"][::-1], c["goods"][::-1]
    tpr = np.concatenate(([0.0], np.cumsum(bads) / bads.sum()))
    fpr = np.concatenate(([0.0], np.cumsum(goods) / goods.sum()))
    rows = np.concatenate(([0.0], np.cumsum(bads + goods) / (bads.sum() + goods.sum())))
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    roc, cap = fig.subplots(1, 2)
    roc.plot(*thin(fpr, tpr), color="#2b5c8a")
    roc.plot([0, 1], [0, 1], ls=":", color="#9aa3ad")
    roc.set(xlabel="false positive rate (goods flagged)", ylabel="true positive rate (bads flagged)",
            title=f"ROC, {name}")
    bad_rate = float(bads.sum() / (bads.sum() + goods.sum()))
    cap.plot(*thin(rows, tpr), color="#2b5c8a", label="model")
    cap.plot([0, bad_rate, 1], [0, 1, 1], ls="--", color="#4c9a5b", label="perfect")
    cap.plot([0, 1], [0, 1], ls=":", color="#9aa3ad", label="random")
    cap.set(xlabel="share of rows, riskiest first", ylabel="share of bads captured", title=f"CAP, {name}")
    cap.legend(loc="lower right", frameon=False)
    return fig


def ks_figure(y: np.ndarray, p: np.ndarray, name: str, ranks: np.ndarray | None = None) -> Figure:
    """The two cumulative distributions of the prediction, bads and goods, and where they are furthest apart."""
    c = tie_block_curves(y, p, ranks)
    bads, goods, x = np.cumsum(c["bads"]) / c["bads"].sum(), np.cumsum(c["goods"]) / c["goods"].sum(), c["p"]
    i = int(np.argmax(goods - bads))
    gap = (x[i], bads[i], goods[i])
    fig, ax = new_figure(6.0, 4.0)
    x, goods, bads = thin(x, goods, bads)
    ax.step(x, goods, where="post", label="goods", color="#4c9a5b")
    ax.step(x, bads, where="post", label="bads", color="#b03a2e")
    ax.vlines(gap[0], gap[1], gap[2], color="#1d2330", lw=2, label=f"KS {gap[2] - gap[1]:.3f}")
    ax.set(xlabel="predicted probability", ylabel="cumulative share", title=f"KS, {name}")
    if x.min() > 0 and x.max() / x.min() > 50:
        ax.set_xscale("log")
    ax.legend(frameon=False)
    return fig


def interval_by_month_figure(table: pd.DataFrame, column: str, label: str, reference: float | None = None) -> Figure:
    """A figure of `column` by as-of month with its interval (`lo`, `hi`) and an optional reference line."""
    fig, ax = new_figure(6.5, 3.6)
    x = pd.to_datetime(table["as_of"])
    ax.fill_between(x, table["lo"], table["hi"], color="#2b5c8a", alpha=0.15, step=None, label="95 % interval")
    ax.plot(x, table[column], marker="o", color="#2b5c8a", label=label)
    if reference is not None:
        ax.axhline(reference, ls="--", color="#b03a2e", label=f"development {reference:.3f}"
                   if column == "auc" else f"{reference:g}")
    ax.set(ylabel=label, xlabel="as of")
    ax.legend(frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def calibration_grades_figure(table: pd.DataFrame) -> Figure:
    """Observed default rate against mean PD per grade, with intervals, on log axes (PDs are small)."""
    fig, ax = new_figure(5.8, 4.6)
    t = table[table["rows"] > 0]
    err = np.vstack([t["observed"] - t["lo"], t["hi"] - t["observed"]]).clip(min=0)
    ax.errorbar(t["mean_pd"], t["observed"].clip(lower=1e-5), yerr=err, fmt="o", color="#2b5c8a", capsize=3,
                label="observed rate, 95 % Jeffreys interval")
    positive = t["observed"].to_numpy()[t["observed"].to_numpy() > 0]
    lo = max(min(t["mean_pd"].min(), positive.min(initial=1.0)) / 2, 1e-5)
    ax.plot([lo, 1], [lo, 1], ls=":", color="#9aa3ad", label="observed = predicted")
    ax.set(xscale="log", yscale="log", xlabel="mean PD of the grade", ylabel="observed default rate",
           title="Calibration by grade")
    ax.legend(frameon=False, fontsize="small")
    return fig


def histogram_figure(values: pd.Series, title: str, xlabel: str) -> Figure:
    fig, ax = new_figure(6.0, 3.4)
    counts = values.value_counts().sort_index()
    ax.bar([str(i) for i in counts.index], counts.to_numpy(), color="#2b5c8a")
    ax.set(title=title, xlabel=xlabel, ylabel="rows")
    return fig
