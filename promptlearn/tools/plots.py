"""Pictures of the result tables (a ``tables.Chart``) and of t-SNE embeddings, drawn on matplotlib's Agg canvas:
files only, no display and no pyplot state, so they work on a headless machine and inside other programs."""
import math
import textwrap
from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

DPI = 100
MISSING_COLOR = "0.55"


def series_colors(labels: Sequence[str]) -> dict:
    """One colour per series label, in order of first appearance (the same label keeps its colour in every panel)."""
    palette = colormaps["tab10"].colors
    unique = list(dict.fromkeys(labels))
    return {label: palette[i % len(palette)] for i, label in enumerate(unique)}


def class_colors(n: int) -> List[tuple]:
    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    cmap = colormaps["turbo"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def chart_figure(chart, title: str) -> Figure:
    """``chart`` (grouped bars or lines, one axes per panel) drawn with ``title``."""
    fig = _bar_figure(chart) if chart.kind == "bars" else _line_figure(chart)
    fig.suptitle(fitted(title, fig), fontsize=11)
    return fig


def fitted(title: str, fig: Figure) -> str:
    """``title`` broken into lines that fit the figure's width (about 12 characters an inch at 11 points)."""
    return textwrap.fill(title, width=max(30, int(fig.get_size_inches()[0] * 12)))


def draw_chart(chart, title: str, path: str) -> None:
    """Write ``chart`` as a PNG at ``path``."""
    chart_figure(chart, title).savefig(path, dpi=DPI)


def _legend(fig: Figure, handles: list, columns: int = 8) -> None:
    rows = math.ceil(len(handles) / columns)
    fig.legend(handles=handles, loc="outside lower center", ncols=math.ceil(len(handles) / rows), fontsize=9,
               frameon=False)


def _bar_figure(chart) -> Figure:
    widest = max(len(p.groups) * max(len(p.series), 1) for p in chart.panels)
    entries = len({s.label for p in chart.panels for s in p.series}) + 2  # the legend: series, paper, missing
    across = max(len(p.groups) for p in chart.panels) <= 3  # panels of few groups side by side, else stacked
    rows, columns = (1, len(chart.panels)) if across else (len(chart.panels), 1)
    width = min(20.0, max(6.5, (2.0 + 0.22 * widest) * columns, 1.1 * min(entries, 8)))
    fig = Figure(figsize=(width, 2.8 * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    colors = series_colors([s.label for p in chart.panels for s in p.series])
    any_published = any_missing = False
    for ax, panel in zip(axes, chart.panels):
        count = max(len(panel.series), 1)
        bar = 0.8 / count
        top = 0.0
        for k, series in enumerate(panel.series):
            offsets = np.arange(len(panel.groups)) + (k - (count - 1) / 2) * bar
            for x, value, error, published in zip(offsets, series.values, series.errors, series.published):
                if value is None:
                    ax.plot(x, 0, marker="x", color=MISSING_COLOR, markersize=5, clip_on=False)
                    any_missing = True
                else:
                    ax.bar(x, value, bar, color=colors[series.label])
                    if error:
                        ax.errorbar(x, value, yerr=error, fmt="none", ecolor="0.2", capsize=2, linewidth=0.8)
                    top = max(top, value + (error or 0))
                if published is not None:
                    ax.hlines(published, x - bar / 2, x + bar / 2, colors="black", linewidth=1.8)
                    any_published = True
                    top = max(top, published)
        ax.set_xticks(np.arange(len(panel.groups)))
        crowded = sum(len(g) for g in panel.groups) > 7 * len(panel.groups) and len(panel.groups) > 3
        ax.set_xticklabels(panel.groups, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                           fontsize=9)
        ax.set_xlim(-0.5, len(panel.groups) - 0.5)
        ax.set_ylim(0, min(105.0, top * 1.1) if top > 0 else 100.0)
        ax.set_ylabel(chart.ylabel, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if panel.title:
            ax.set_title(panel.title, fontsize=10)
    handles = [Patch(color=color, label=label) for label, color in colors.items()]
    if any_published:
        handles.append(Line2D([], [], color="black", linewidth=1.8, label="paper"))
    if any_missing:
        handles.append(Line2D([], [], color=MISSING_COLOR, marker="x", linestyle="none", label="missing"))
    _legend(fig, handles)
    return fig


def _line_figure(chart) -> Figure:
    columns = max(chart.columns, 1)
    rows = math.ceil(len(chart.panels) / columns)
    fig = Figure(figsize=(3.7 * columns + 0.5, 2.9 * rows + 1.1), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    colors = series_colors([s.label for p in chart.panels for s in p.series])
    any_missing = False
    for index, (ax, panel) in enumerate(zip(axes, chart.panels)):
        x = np.array([float(g) for g in panel.groups])
        for series in panel.series:
            y = np.array([np.nan if v is None else v for v in series.values])
            ax.plot(x, y, marker=series.marker, color=colors[series.label], markersize=6, linewidth=1.4)
            for xi, yi, error in zip(x, y, series.errors):
                if error and not np.isnan(yi):
                    ax.errorbar(xi, yi, yerr=error, fmt="none", ecolor=colors[series.label], capsize=2,
                                linewidth=0.8)
            gaps = x[np.isnan(y)]
            if gaps.size:  # a missing point: a grey cross on the x axis
                ax.plot(gaps, np.zeros_like(gaps), marker="x", color=MISSING_COLOR, linestyle="none",
                        markersize=6, transform=ax.get_xaxis_transform(), clip_on=False)
                any_missing = True
        if len(x) > 1 and x.min() > 0:
            ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels(panel.groups)
        ax.minorticks_off()
        if index + columns >= len(chart.panels):  # the lowest panel of its column
            ax.set_xlabel(chart.xlabel, fontsize=9)
        if index % columns == 0:
            ax.set_ylabel(chart.ylabel, fontsize=9)
        ax.set_title(panel.title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(chart.panels):]:
        ax.set_visible(False)
    markers = {s.label: s.marker for p in chart.panels for s in p.series}
    handles = [Line2D([], [], color=colors[label], marker=markers[label], label=label) for label in colors]
    if any_missing:
        handles.append(Line2D([], [], color=MISSING_COLOR, marker="x", linestyle="none", label="missing"))
    _legend(fig, handles)
    return fig


def draw_scatter_panels(panels: Sequence[Tuple[str, np.ndarray]], labels: np.ndarray, classnames: Sequence[str],
                        title: str, path: str, caption: Optional[str] = None) -> None:
    """One scatter panel per (name, (N, 2) points), every point coloured by its class; a PNG at ``path``."""
    colors = class_colors(len(classnames))
    size = float(np.clip(3000 / max(len(labels), 1), 4, 24))
    fig = Figure(figsize=(3.8 * len(panels) + 0.4, 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, points) in zip(axes, panels):
        for c, color in enumerate(colors):
            chosen = labels == c
            ax.scatter(points[chosen, 0], points[chosen, 1], s=size, color=color, alpha=0.85, linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
    if len(classnames) <= 20:
        handles = [Line2D([], [], color=color, marker="o", linestyle="none", label=name)
                   for color, name in zip(colors, classnames)]
        _legend(fig, handles, columns=5)
    fig.suptitle("\n".join(fitted(t, fig) for t in (title, caption) if t), fontsize=10)
    fig.savefig(path, dpi=DPI)
