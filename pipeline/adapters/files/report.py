"""`report.html`: a run's report for operators, in French, one self-contained file (charts as inline SVG).

Legible on a 1280-pixel screen and on A4: every text of a chart at 9 points or more (12 pixels at
the chart's own size; the page scales charts up, never down below print size), never rotated;
where there are too many departments or depots to name, a summary chart and a table instead.
"""

from __future__ import annotations

import io
import os
import threading
from functools import lru_cache
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from pipeline.domain.french import french_date, number
from pipeline.domain.report import ReportData, VaccineFigures
from pipeline.domain.allocate import OUTRIGHT
from pipeline.domain.vocabulary import EmailState, Kind, Reason

# summary.json's email counts, as the vocabulary says them (`waiting`: every state not yet settled).
EMAILS = {"sent": EmailState.SENT.short, "failed": EmailState.FAILED.short, "unknown": EmailState.UNKNOWN.short,
          "waiting": EmailState.PENDING.short}
COLOURS = {"supply": "#9aa5b1", "demand": "#3d6fb6", "allocated": "#2e9e6a", "sold_out": "#c0392b",
           "closed": "#d5d9de"}
TEXT = 9          # points: the least size of any text of a chart
WIDTH = 7.5       # inches: an A4 page's text width; the page shows charts at this size or larger
NAMED = 30        # departments named one by one up to this many, else their distribution
LISTED = 10       # depots with pending vials listed on the page; all of them in a folded table
HEATMAP = 40      # depots drawn one row each up to this many, else the day's distribution over depots
STYLE = {"svg.fonttype": "none",    # text kept as text: smaller, searchable, read by screen readers
         "svg.hashsalt": "vialflow",  # the same ids in every writing: same run, same bytes
         "font.size": TEXT, "axes.titlesize": TEXT + 1, "axes.labelsize": TEXT, "xtick.labelsize": TEXT,
         "ytick.labelsize": TEXT, "legend.fontsize": TEXT, "axes.spines.top": False, "axes.spines.right": False}
_style = threading.Lock()
_styled = False
# matplotlib's caches (fonts, text layout) are not made for threads drawing at once (the console's):
# one report draws at a time.
_drawing = threading.Lock()


def write_report(data: ReportData, path: Path) -> None:
    path.write_text(render_report(data), encoding="utf-8")


def render_report(data: ReportData) -> str:
    """Draw the charts and fill the page."""
    with _drawing:
        charts = {"vaccines": _vaccines(data), "refusals": _refusals(data), "emails": _emails(data),
                  "departments": _departments(data), "capacity": _capacity(data),
                  **{f"timeline-{key}": _timeline(data, key) for key in data.timelines}}
    return _template().render(data=data, charts=charts, reason=Reason.labelled, emails=EMAILS, number=number,
                              french_date=french_date, percent=_percent, vials=_vials, listed=LISTED, instant=_instant,
                              named=NAMED, kind_label=Kind.labelled,
                              lowest=_lowest_departments(data), outright=[Reason(code).short for code in OUTRIGHT])


def _matplotlib():
    """matplotlib, imported on first use (only the runs that write a report pay its second of
    import), with this report's style set once for the process: constant settings, never changed
    per report, so that reports drawn at the same time in several threads agree.

    The charts are drawn with matplotlib's object API straight to SVG, which needs no display
    backend: an MPLBACKEND meant for another program (or misspelt, which makes matplotlib's import
    fail) is set aside while it is imported."""
    global _styled
    with _style:
        if not _styled:
            chosen = os.environ.pop("MPLBACKEND", None)
            try:
                import matplotlib
            finally:
                if chosen is not None:
                    os.environ["MPLBACKEND"] = chosen
            matplotlib.rcParams.update(STYLE)
            _styled = True
    import matplotlib

    return matplotlib


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html")


def _figure(height: float):
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height), layout="constrained")


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or doctype


def _vaccines(data: ReportData) -> str:
    figure = _figure(3.0)
    axes = figure.subplots()
    x = np.arange(len(data.vaccines))
    supply = [v.supply or 0 for v in data.vaccines]
    axes.bar(x - 0.27, supply, 0.27, color=COLOURS["supply"], label="stock")
    axes.bar(x, [v.demand for v in data.vaccines], 0.27, color=COLOURS["demand"], label="demande après plafonds")
    axes.bar(x + 0.27, [v.allocated for v in data.vaccines], 0.27, color=COLOURS["allocated"], label="attribué")
    for k, vaccine in enumerate(data.vaccines):
        if vaccine.supply is None:
            axes.annotate("stock\nillimité", (x[k] - 0.27, 0), xytext=(0, 3), textcoords="offset points",
                          ha="center", va="bottom")
    axes.set_xticks(x, [v.label for v in data.vaccines])
    axes.set_ylabel("flacons")
    _vials_axis(axes)
    axes.legend(frameon=False, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return _svg(figure)


def _timeline(data: ReportData, key: str) -> str:
    """A limited vaccine's first-come-first-served curve, zoomed on where it sold out: from its
    first line to a little after that instant (the lines after it got nothing: a flat curve)."""
    curve, vaccine = data.timelines[key], data.vaccine(key)
    figure = _figure(3.0)
    axes = figure.subplots()
    when = pd.to_datetime(curve["submitted_at"]).dt.tz_localize(None)  # already in the session's time zone
    axes.step(when, curve["demand"], where="post", color=COLOURS["demand"], label="demande cumulée (après plafonds)")
    axes.step(when, curve["allocated"], where="post", color=COLOURS["allocated"], label="attribué cumulé")
    axes.axhline(vaccine.supply or 0, color=COLOURS["supply"], linestyle="--",
                 label=f"stock : {number(vaccine.supply or 0)} flacons")
    title = f"{vaccine.label} : premier arrivé, premier servi"
    if vaccine.sold_out_at is not None:
        sold = pd.Timestamp(vaccine.sold_out_at).tz_localize(None)
        axes.axvline(sold, color=COLOURS["sold_out"], linestyle=":", label=f"épuisé à {sold:%d/%m %H:%M:%S}")
        start = when.iloc[0]
        margin = max(pd.Timedelta(seconds=5), (sold - start) * 0.25)
        axes.set_xlim(start - margin * 0.2, sold + margin)
        shown = curve["demand"][(when <= sold + margin).to_numpy()]
        axes.set_ylim(0, max(vaccine.supply or 0, int(shown.max()) if len(shown) else 0, 1) * 1.15)
        title += f", épuisé {_duration(sold - start)} après la première ligne"
    elif when.iloc[-1] - when.iloc[0] < pd.Timedelta(seconds=10):  # lines within seconds: a readable span around
        axes.set_xlim(when.iloc[0] - pd.Timedelta(seconds=30), when.iloc[-1] + pd.Timedelta(seconds=30))
    axes.set_ylabel("flacons")
    _vials_axis(axes)
    figure.suptitle(title, x=0.0, ha="left", fontsize=TEXT + 1)
    axes.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2)
    _time_axis(axes)
    return _svg(figure)


def _vials_axis(axes, axis: str = "y") -> None:
    """Counts (of vials, lines, emails) as French typography writes them (12 345), whole numbers only."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    counts = axes.yaxis if axis == "y" else axes.xaxis
    counts.set_major_locator(MaxNLocator(integer=True))
    counts.set_major_formatter(FuncFormatter(lambda value, _: number(int(value))))


def _time_axis(axes) -> None:
    """Horizontal time ticks, as few as fit, each written as short as its span allows."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=7)  # 6 leaves some spans with no interval (a warning)
    axes.xaxis.set_major_locator(locator)
    # Day-first numeric dates, as a French reader writes them (the default names months in English); ticks
    # seconds apart (a vaccine sold out within a minute) as clock times, never as bare seconds and microseconds.
    axes.xaxis.set_major_formatter(ConciseDateFormatter(
        locator, formats=["%Y", "%m/%Y", "%d/%m", "%H:%M", "%H:%M", "%H:%M:%S"],
        zero_formats=["", "%Y", "%m/%Y", "%d/%m", "%H:%M", "%H:%M:%S"],
        offset_formats=["", "%Y", "%m/%Y", "%d/%m/%Y", "%d/%m/%Y", "%d/%m/%Y %H:%M"]))


def _duration(span: pd.Timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"


def _departments(data: ReportData) -> str:
    """The fill rate of each department, named one by one up to NAMED departments; past that, how
    many departments are served at each rate (the table below names the least served)."""
    frame = data.departments
    rates = frame["fill_rate"].to_numpy(float) * 100
    if len(frame) <= NAMED:
        figure = _figure(max(1.6, 0.24 * len(frame) + 0.9))
        axes = figure.subplots()
        y = np.arange(len(frame))[::-1]
        axes.barh(y, np.nan_to_num(rates), color=COLOURS["allocated"])
        axes.set_yticks(y, frame["department"])
        for k in np.flatnonzero(np.isnan(rates)):
            axes.annotate("aucune demande", (0, y[k]), xytext=(3, 0), textcoords="offset points", va="center")
        axes.set_xlim(0, 100)
        axes.set_xlabel("% de la demande (après plafonds) servie")
        return _svg(figure)
    figure = _figure(2.6)
    axes = figure.subplots()
    axes.hist(rates[~np.isnan(rates)], bins=np.arange(0, 105, 5), color=COLOURS["allocated"], edgecolor="white")
    axes.set_xlim(0, 100)
    axes.set_xlabel("% de la demande (après plafonds) servie")
    axes.set_ylabel("départements")
    return _svg(figure)


def _lowest_departments(data: ReportData) -> pd.DataFrame:
    frame = data.departments.dropna(subset=["fill_rate"])
    return frame.sort_values(["fill_rate", "department"], kind="stable").head(10)


def _capacity(data: ReportData) -> str:
    """Each depot's use of its capacity per day: one row per depot up to HEATMAP depots, closed days
    in grey with their legend; past that, per day, the median use and the share of depots at capacity."""
    from matplotlib.patches import Patch

    grid = data.capacity
    days = list(grid.columns)
    labels = [f"{d:%d/%m}" for d in days]
    step = max(1, int(np.ceil(len(days) / 12)))  # 12 horizontal dates fit the width at 9 points
    if len(grid) == 0 or len(grid) > HEATMAP:
        figure = _figure(2.8)
        axes = figure.subplots()
        share = grid.to_numpy(float) * 100
        open_days = ~np.isnan(share)
        median = [np.median(column[mask]) if mask.any() else np.nan for column, mask in zip(share.T, open_days.T)]
        full = [(column[mask] >= 99.5).mean() * 100 if mask.any() else np.nan
                for column, mask in zip(share.T, open_days.T)]
        x = np.arange(len(days))
        axes.plot(x, median, marker="o", color=COLOURS["demand"], label="utilisation médiane des dépôts ouverts")
        axes.plot(x, full, marker="s", color=COLOURS["sold_out"], label="part des dépôts ouverts à pleine capacité")
        axes.set_xticks(x[::step], labels[::step])
        axes.set_ylim(0, 100)
        axes.set_ylabel("%")
        axes.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=1)
        return _svg(figure)
    from matplotlib import colormaps

    figure = _figure(max(2.0, 0.22 * len(grid) + 1.4))
    axes = figure.subplots()
    cmap = colormaps["YlOrRd"].with_extremes(bad=COLOURS["closed"])
    image = axes.imshow(np.ma.masked_invalid(grid.to_numpy(float) * 100), aspect="auto", cmap=cmap, vmin=0,
                        vmax=100, interpolation="nearest")
    axes.set_xticks(np.arange(len(days))[::step], labels[::step])
    axes.set_yticks(np.arange(len(grid)), grid.index)
    figure.colorbar(image, ax=axes, label="% de la capacité du jour", shrink=0.8)
    axes.legend(handles=[Patch(facecolor=COLOURS["closed"], label="dépôt fermé ce jour-là")], frameon=False,
                loc="lower left", bbox_to_anchor=(0.0, 1.0))
    return _svg(figure)


def _refusals(data: ReportData) -> str:
    frame = data.refusals
    figure = _figure(max(1.6, 0.3 * len(frame) + 0.9))
    axes = figure.subplots()
    axes.barh([Reason.labelled(r) for r in frame["reason"]][::-1], frame["lines"][::-1], color=COLOURS["demand"])
    if frame.empty:
        axes.text(0.5, 0.5, "toutes les lignes sont servies en totalité", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_xlabel("lignes")
    _vials_axis(axes, "x")
    return _svg(figure)


def _emails(data: ReportData) -> str:
    figure = _figure(1.8)
    axes = figure.subplots()
    states = list(EMAILS)
    axes.barh([EMAILS[s] for s in states][::-1], [data.emails.get(s, 0) for s in states][::-1],
              color=[COLOURS["allocated"], COLOURS["sold_out"], COLOURS["supply"], COLOURS["demand"]][::-1])
    axes.set_xlabel("emails")
    _vials_axis(axes, "x")
    return _svg(figure)


def _vials(count: int) -> str:
    """`165 flacons`, `12 345 flacons`, `1 flacon`."""
    return f"{number(count)} flacon" if -2 < count < 2 else f"{number(count)} flacons"


def _percent(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:.1f}\u202f%".replace(".", ",")


def _instant(value) -> str:
    if value is None or pd.isna(value):
        return "jamais"
    when = pd.Timestamp(value)
    return f"{french_date(when.date())} à {when:%H:%M:%S}"


__all__ = ["render_report", "write_report", "VaccineFigures"]
