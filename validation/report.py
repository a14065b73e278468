"""The model validation report: one self-contained HTML file a reviewer can open anywhere.

A `Report` collects sections, text, tables and figures in order and writes them as a single HTML page:
figures are embedded as base64 PNG, styles are inline, nothing is fetched. The plotting helpers take plain
arrays and return matplotlib Figures built without pyplot (no global state, no display needed), rendered
with the Agg rasteriser.

    report = Report("Default model — out-of-time validation")
    report.add_section("Discrimination")
    report.add_table("Metrics", pd.DataFrame([metric_set(y, p, groups)]))
    report.add_figure("ROC", roc_figure({"LightGBM": (y, p), "scorecard": (y, p_sc)}))
    report.add_table("Deciles", decile_table(y, p, scores))
    report.write("validation.html")
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from validation import metrics

__all__ = ["Report", "calibration_figure", "decile_table", "new_figure", "roc_figure", "score_distribution_figure"]

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2330; max-width: 1100px;
       margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #2b5c8a; padding-bottom: .3em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #d5dbe3; padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .5em; }
.meta { color: #6b7380; font-size: .9em; }
table { border-collapse: collapse; font-size: .88em; margin: .4em 0 1.2em; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { padding: .28em .7em; border-bottom: 1px solid #e3e7ed; }
th { background: #f2f5f9; text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f8fafc; }
figure { margin: .6em 0 1.6em; }
figure img { max-width: 100%; border: 1px solid #e3e7ed; }
code { background: #f2f5f9; padding: 0 .25em; border-radius: 3px; }
"""

Fmt = str | Callable[[Any], str] | Mapping[str, str | Callable[[Any], str]] | None


# -------------------------------------------------------------------------------------------- builder


def _inline_markdown(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"<em>\1</em>", out)


def _markdown(text: str) -> str:
    """A small Markdown subset: paragraphs, '#'-headings, '-' bullet lists, **bold**, *italics*, `code`."""
    parts = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if not lines:
            continue
        if all(line.startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{_inline_markdown(line[2:])}</li>" for line in lines)
            parts.append(f"<ul>{items}</ul>")
        elif m := re.match(r"(#{1,4})\s+(.*)", lines[0]):
            level = len(m.group(1)) + 1  # '#' is a section heading below the report's <h1>
            parts.append(f"<h{level}>{_inline_markdown(m.group(2))}</h{level}>")
            if lines[1:]:
                parts.append(f"<p>{_inline_markdown(' '.join(lines[1:]))}</p>")
        else:
            parts.append(f"<p>{_inline_markdown(' '.join(lines))}</p>")
    return "\n".join(parts)


def _formatter(fmt: Fmt, column: str) -> Callable[[Any], str] | None:
    if isinstance(fmt, Mapping):
        fmt = fmt.get(column)
    if fmt is None:
        return None
    if callable(fmt):
        return fmt
    spec = fmt[2:-1] if fmt.startswith("{:") and fmt.endswith("}") else fmt  # "{:.3f}" or ".3f"
    return lambda v: format(v, spec)


def _default_formatter(values: pd.Series) -> Callable[[Any], str]:
    """One format per column, so its numbers line up: integers with thousands separators, decimals by magnitude."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return lambda v: "yes" if v else "no"
    if not pd.api.types.is_numeric_dtype(values.dtype):
        return str
    v = values.to_numpy(dtype=float, na_value=np.nan)
    v = v[np.isfinite(v)]
    if len(v) == 0 or (np.all(v == np.round(v)) and np.abs(v).max() < 1e15):
        return lambda x: f"{x:,.0f}"
    top = np.abs(v).max()
    if top < 1e-3:
        return lambda x: f"{x:.3g}"
    decimals = 4 if top < 10 else 2 if top < 1_000 else 1
    return lambda x: f"{x:,.{decimals}f}"


def _table_html(df: pd.DataFrame, fmt: Fmt = None) -> str:
    show_index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
    if show_index:
        df = df.reset_index()
    cols = [str(c) for c in df.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype) for c in df.columns
    ]
    head = "".join(
        f'<th{" class=num" if num else ""}>{html.escape(c)}</th>' for c, num in zip(cols, numeric, strict=True)
    )
    body = []
    formatters = [_formatter(fmt, c) or _default_formatter(df[col]) for c, col in zip(cols, df.columns, strict=True)]
    for row in df.itertuples(index=False, name=None):  # a report table has tens of rows, not millions
        cells = []
        for v, num, f in zip(row, numeric, formatters, strict=True):
            missing = v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
            text = "" if missing else f(v)
            cells.append(f'<td{" class=num" if num else ""}>{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _png_base64(fig: Figure, dpi: int = 110) -> str:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # PNG always goes through Agg
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:  # a figure made with pyplot is registered there: release it
            pyplot.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Report:
    """An ordered list of HTML blocks with a title; `write` renders it into one self-contained file."""

    def __init__(self, title: str, dated: bool = False) -> None:
        """dated: the page says the day it was made, without a time (a review pack reads in days)."""
        self.title = title
        self.created = datetime.now(UTC).strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M UTC")
        self._blocks: list[str] = []
        self.n_figures = 0
        self.n_tables = 0

    def add_section(self, title: str, anchor: str | None = None) -> Report:
        """A heading; `anchor` gives it an id that links (`#anchor`) can point at."""
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self._blocks.append(f"<h2{ident}>{html.escape(title)}</h2>")
        return self

    def add_text(self, text: str) -> Report:
        """Markdown (a small subset) or, when it starts with '<', HTML inserted as is."""
        self._blocks.append(text if text.lstrip().startswith("<") else _markdown(text))
        return self

    def add_table(self, title: str | None, df: pd.DataFrame, fmt: Fmt = None) -> Report:
        """A DataFrame as a table; fmt: one format spec ('.3f', '{:.1%}') or callable for every cell, or a dict
        of them by column. Numeric columns are right-aligned; the index is shown unless it is a plain range."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"add_table needs a pandas DataFrame, got {type(df).__name__}")
        caption = f"<h3>{html.escape(title)}</h3>\n" if title else ""
        self._blocks.append(caption + _table_html(df, fmt))
        self.n_tables += 1
        return self

    def add_figure(self, title: str | None, fig: Figure, dpi: int = 110) -> Report:
        """Embed a matplotlib Figure as a base64 PNG; the figure is closed afterwards."""
        if not isinstance(fig, Figure):
            raise TypeError(f"add_figure needs a matplotlib Figure, got {type(fig).__name__}")
        data = _png_base64(fig, dpi)
        alt = html.escape(title or "figure")
        caption = f"<figcaption><h3>{html.escape(title)}</h3></figcaption>" if title else ""
        self._blocks.append(f'<figure>{caption}<img alt="{alt}" src="data:image/png;base64,{data}"></figure>')
        self.n_figures += 1
        return self

    def render(self) -> str:
        title = html.escape(self.title)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<h1>{title}</h1>\n<p class="meta">Generated {self.created} by dynascore.validation</p>\n'
            + "\n".join(self._blocks)
            + "\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically: a temporary file in the same folder, renamed over `path` only once complete.

        An interrupted write leaves the previous file (or none) and no temporary file behind.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.render().encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)  # mkstemp makes it private
            with os.fdopen(fd, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


# ---------------------------------------------------------------------------------------------- plots


def new_figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, Any]:
    """A figure and its one axes in the reports' layout, without pyplot's global state (safe in workers)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def roc_figure(models: Mapping[str, tuple[Any, Any]]) -> Figure:
    """ROC curves of several models, {name: (y, p)}, with the AUC of each in the legend."""
    fig, ax = new_figure(5.5, 5.0)
    for name, (y, p) in models.items():
        fpr, tpr = metrics.roc_points(y, p)
        ax.plot(fpr, tpr, lw=1.6, label=f"{name}  AUC {metrics.auc(y, p):.3f}")
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--", label="random")
    ax.set(xlabel="false positive rate (goods flagged)", ylabel="true positive rate (bads caught)",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(models: Mapping[str, tuple[Any, Any]], bins: int = 10) -> Figure:
    """Observed vs mean predicted rate per equal-frequency bin, with the 95 % interval expected by chance."""
    fig, ax = new_figure(5.5, 5.0)
    top = 0.0
    for name, (y, p) in models.items():
        t = metrics.calibration_table(y, p, bins)
        yerr = np.vstack([t["predicted"] - t["lo"], t["hi"] - t["predicted"]]).clip(min=0)
        line = ax.plot(t["predicted"], t["observed"], marker="o", ms=4, lw=1.2,
                       label=f"{name}  ({int(t['inside'].sum())}/{len(t)} inside)")[0]
        ax.errorbar(t["predicted"], t["predicted"], yerr=yerr, fmt="none", ecolor=line.get_color(), alpha=0.45,
                    capsize=3)
        top = max(top, float(t[["predicted", "observed", "hi"]].to_numpy().max()))
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--", label="perfect calibration")
    ax.set(xlabel="mean predicted rate", ylabel="observed rate", xlim=(0, top), ylim=(0, top),
           title=f"Calibration ({bins} equal-frequency bins; bars: 95 % range if calibrated)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def calibration_over_time_figure(table: pd.DataFrame) -> Figure:
    """Observed and mean predicted rate per period and slice (a `calibration_by_period` table with a `slice`
    column; the period is its first other column): the band is the 95 % range of the observed rate if the
    predictions are right, so a level drift shows as points leaving the band month after month."""
    fig, ax = new_figure(7.5, 4.0)
    period = next(c for c in table.columns if c != "slice")
    for name, part in table.groupby("slice", sort=False):
        x = part[period].to_numpy()
        line = ax.plot(x, part["predicted"], lw=1.4, label=f"{name}: predicted")[0]
        ax.fill_between(x, part["lo"], part["hi"], color=line.get_color(), alpha=0.15, lw=0)
        ax.plot(x, part["observed"], ls="none", marker="o", ms=3.5, color=line.get_color(),
                label=f"{name}: observed ({int(part['inside'].sum())}/{len(part)} inside)")
    ax.set(xlabel=str(period), ylabel="event rate", title="Calibration over time (band: 95 % range if calibrated)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def score_distribution_figure(scores: Any, y: Any, bins: int = 40) -> Figure:
    """Histograms (densities) of the score for goods and for bads, with the KS separation in the title."""
    y = metrics._check_y(y)
    s = metrics._check_p(scores, len(y), name="scores")
    fig, ax = new_figure(6.5, 4.0)
    edges = np.histogram_bin_edges(s, bins=bins)
    n_bad = int(y.sum())
    ax.hist(s[y == 0], bins=edges, density=True, alpha=0.55, color="#2b8a5c", label=f"goods (n={len(y) - n_bad:,})")
    ax.hist(s[y == 1], bins=edges, density=True, alpha=0.55, color="#c0392b", label=f"bads (n={n_bad:,})")
    title = "Score distribution"
    if 0 < y.sum() < len(y):
        title += f"  (KS {metrics.ks(y, s):.3f})"
    ax.set(xlabel="score", ylabel="density", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def decile_table(y: Any, p: Any, scores: Any = None, bins: int = 10) -> pd.DataFrame:
    """Rows grouped into equal-frequency deciles, riskiest first: the reviewer's gains / KS table.

    Deciles are by `scores` when given (higher score = safer: the lowest scores come first), else by p
    (highest p first). Columns: decile, the score (or p) range, n, bads, bad_rate, mean predicted p,
    cum_bads (share of all bads captured down to this decile), cum_goods, ks (cum_bads - cum_goods),
    lift (bad rate over the overall bad rate).
    """
    y, p = metrics._check(y, p, probability=True)
    if scores is None:
        key, label = -p, "p"
        ranked_by = p
    else:
        ranked_by = metrics._check_p(scores, len(y), name="scores")
        key, label = ranked_by, "score"
    b = metrics.equal_frequency_bins(key, bins)  # bin 0 = lowest key = riskiest
    n = np.bincount(b, minlength=bins)
    keep = n > 0
    frame = pd.DataFrame({"b": b, "y": y, "p": p, "s": ranked_by})
    g = frame.groupby("b", sort=True)
    bads = np.bincount(b, weights=y, minlength=bins)[keep]
    n = n[keep]
    total_bads, total_goods = y.sum(), len(y) - y.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        cum_bads = np.cumsum(bads) / total_bads
        cum_goods = np.cumsum(n - bads) / total_goods
        lift = (bads / n) / y.mean()
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(n) + 1),
            f"{label}_min": g["s"].min().to_numpy(),
            f"{label}_max": g["s"].max().to_numpy(),
            "n": n,
            "bads": bads.astype(np.int64),
            "bad_rate": bads / n,
            "mean_p": g["p"].mean().to_numpy(),
            "cum_bads": cum_bads,
            "cum_goods": cum_goods,
            "ks": cum_bads - cum_goods,
            "lift": lift,
        }
    )
