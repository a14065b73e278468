"""The pack's plots: matplotlib figures without pyplot, embedded by the Report as PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from validation.discrimination import cap_points
from validation.metrics import roc_points
from validation.report import new_figure

POINTS = 2_000  # a curve drawn with more points than a figure has pixels only takes longer to draw


def thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """At most POINTS evenly spaced points of a curve, its ends kept."""
    n = len(arrays[0])
    if n <= POINTS:
        return arrays
    keep = np.unique(np.linspace(0, n - 1, POINTS).round().astype(np.int64))
    return tuple(a[keep] for a in arrays)


def roc_cap_figure(y: np.ndarray, p: np.ndarray, name: str) -> Figure:
    """ROC and CAP side by side: the two curves reviewers read, with the diagonal of a random model."""
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    roc, cap = fig.subplots(1, 2)
    fpr, tpr = thin(*roc_points(y, p))
    roc.plot(fpr, tpr, color="#2b5c8a")
    roc.plot([0, 1], [0, 1], ls=":", color="#9aa3ad")
    roc.set(xlabel="false positive rate (goods flagged)", ylabel="true positive rate (bads flagged)",
            title=f"ROC, {name}")
    x, c = thin(*cap_points(y, p))
    bad_rate = float(np.mean(y))
    cap.plot(x, c, color="#2b5c8a", label="model")
    cap.plot([0, bad_rate, 1], [0, 1, 1], ls="--", color="#4c9a5b", label="perfect")
    cap.plot([0, 1], [0, 1], ls=":", color="#9aa3ad", label="random")
    cap.set(xlabel="share of rows, riskiest first", ylabel="share of bads captured", title=f"CAP, {name}")
    cap.legend(loc="lower right", frameon=False)
    return fig


def ks_figure(y: np.ndarray, p: np.ndarray, name: str) -> Figure:
    """The two cumulative distributions of the prediction, bads and goods, and where they are furthest apart."""
    fig, ax = new_figure(6.0, 4.0)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.concatenate((ps[1:] != ps[:-1], [True]))  # tied predictions enter together
    bads = np.cumsum(ys)[last] / max(ys.sum(), 1)
    goods = np.cumsum(1 - ys)[last] / max((1 - ys).sum(), 1)
    x = ps[last]
    i = int(np.argmax(goods - bads))
    gap = (x[i], bads[i], goods[i])
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
