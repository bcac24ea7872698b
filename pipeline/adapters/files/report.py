"""`report.html`: a run's report for operators, in French, one self-contained file (charts as inline SVG)."""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from pipeline.domain.french import french_date, number
from pipeline.domain.report import ReportData

REASONS = {"ok": "servie", "cap": "plafond", "unit": "boîte entière", "supply": "stock épuisé",
           "eligibility": "non éligible", "window": "hors période", "zone": "hors zone",
           "not_attached": "non rattaché", "unknown_pharmacy": "officine inconnue",
           "unknown_professional": "professionnel inconnu", "cancelled": "annulée"}
EMAILS = {"sent": "envoyés", "failed": "en échec", "unknown": "incertains", "waiting": "en attente"}
COLOURS = {"supply": "#9aa5b1", "demand": "#3d6fb6", "allocated": "#2e9e6a", "sold_out": "#c0392b"}
# rc_context changes matplotlib's settings for the whole process: two threads drawing at once (the
# console's) would each draw with the other's settings half the time. One report draws at a time.
_DRAWING = threading.Lock()


def write_report(data: ReportData, path: Path) -> None:
    path.write_text(render_report(data), encoding="utf-8")


def render_report(data: ReportData) -> str:
    """Draw the charts and fill the page. matplotlib is imported here, not at the top: only the
    runs that write a report pay its second of import."""
    from matplotlib import rc_context

    # Text kept as text in the SVG: smaller, searchable, and read by screen readers.
    with _DRAWING, rc_context({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                               "axes.spines.right": False, "svg.hashsalt": "vialflow"}):
        charts = {"vaccines": _vaccines(data), "refusals": _refusals(data), "emails": _emails(data),
                  "departments": _departments(data), "capacity": _capacity(data),
                  **{f"timeline-{key}": _timeline(data, key) for key in data.timelines}}
    return _template().render(data=data, charts=charts, reasons=REASONS, emails=EMAILS, number=number,
                              french_date=french_date, percent=_percent, instant=_instant)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or doctype


def _vaccines(data: ReportData) -> str:
    figure = _figure(7, 2.8)
    axes = figure.subplots()
    frame = data.vaccines
    x = np.arange(len(frame))
    supply = frame["supply"].astype(float).to_numpy()
    axes.bar(x - 0.27, np.nan_to_num(supply), 0.27, color=COLOURS["supply"], label="stock")
    axes.bar(x, frame["demand"], 0.27, color=COLOURS["demand"], label="demande après plafonds")
    axes.bar(x + 0.27, frame["allocated"], 0.27, color=COLOURS["allocated"], label="attribué")
    for k in np.flatnonzero(np.isnan(supply)):
        axes.annotate("stock illimité", (x[k] - 0.27, 0), rotation=90, ha="center", va="bottom", fontsize=7)
    axes.set_xticks(x, frame["label"])
    axes.set_ylabel("flacons")
    axes.legend(frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, 1.15))
    return _svg(figure)


def _timeline(data: ReportData, key: str) -> str:
    curve = data.timelines[key]
    row = data.vaccines.set_index("vaccine").loc[key]
    figure = _figure(7, 2.8)
    axes = figure.subplots()
    when = pd.to_datetime(curve["submitted_at"]).dt.tz_localize(None)  # already in the session's time zone
    axes.step(when, curve["demand"], where="post", color=COLOURS["demand"], label="demande cumulée (après plafonds)")
    axes.step(when, curve["allocated"], where="post", color=COLOURS["allocated"], label="attribué cumulé")
    axes.axhline(row["supply"], color=COLOURS["supply"], linestyle="--", label=f"stock : {number(int(row['supply']))}")
    if row["sold_out_at"] is not None:
        sold = pd.Timestamp(row["sold_out_at"]).tz_localize(None)
        axes.axvline(sold, color=COLOURS["sold_out"], linestyle=":", label=f"épuisé à {sold:%d/%m %H:%M:%S}")
    axes.set_ylabel("flacons")
    axes.set_title(f"{row['label']} : premier arrivé, premier servi", loc="left")
    axes.legend(frameon=False, fontsize=7, loc="lower right")
    figure.autofmt_xdate()
    return _svg(figure)


def _departments(data: ReportData) -> str:
    frame = data.departments
    figure = _figure(9, 2.8)
    axes = figure.subplots()
    axes.bar(np.arange(len(frame)), frame["fill_rate"].fillna(0) * 100, color=COLOURS["allocated"])
    axes.set_xticks(np.arange(len(frame)), frame["department"], rotation=90, fontsize=6)
    axes.set_ylim(0, 100)
    axes.set_ylabel("% de la demande servie")
    return _svg(figure)


def _capacity(data: ReportData) -> str:
    grid = data.capacity
    figure = _figure(9, max(2.0, 0.12 * len(grid) + 1.2))
    axes = figure.subplots()
    image = axes.imshow(grid.to_numpy() * 100, aspect="auto", cmap="YlOrRd", vmin=0, vmax=100,
                        interpolation="nearest")
    axes.set_xticks(np.arange(grid.shape[1]), [f"{d:%d/%m}" for d in grid.columns], rotation=90, fontsize=6)
    step = max(1, len(grid) // 60)  # every depot named up to 60 rows, then one in `step`
    axes.set_yticks(np.arange(0, len(grid), step), grid.index[::step], fontsize=6)
    figure.colorbar(image, ax=axes, label="% de la capacité du jour", shrink=0.8)
    return _svg(figure)


def _refusals(data: ReportData) -> str:
    frame = data.refusals
    figure = _figure(7, max(1.6, 0.3 * len(frame) + 0.8))
    axes = figure.subplots()
    axes.barh([REASONS.get(r, r) for r in frame["reason"]][::-1], frame["lines"][::-1], color=COLOURS["demand"])
    axes.set_xlabel("lignes")
    return _svg(figure)


def _emails(data: ReportData) -> str:
    figure = _figure(7, 1.8)
    axes = figure.subplots()
    states = list(EMAILS)
    axes.barh([EMAILS[s] for s in states][::-1], [data.emails.get(s, 0) for s in states][::-1],
              color=[COLOURS["allocated"], COLOURS["sold_out"], COLOURS["supply"], COLOURS["demand"]][::-1])
    axes.set_xlabel("emails")
    return _svg(figure)


def _percent(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:.1f} %".replace(".", ",")


def _instant(value) -> str:
    if value is None or pd.isna(value):
        return "jamais"
    when = pd.Timestamp(value)
    return f"{french_date(when.date())} à {when:%H:%M:%S}"
