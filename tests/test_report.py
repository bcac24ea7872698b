"""report.html: one self-contained French page per run, every chart drawn, opened in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import FIXTURE, vialflow

CHARTS = ["chart-vaccines", "chart-timeline-moderna", "chart-departments", "chart-capacity", "chart-refusals",
          "chart-emails"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the browser tests of this machine run it: no sandbox (root), and none of its own network traffic.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]





@pytest.fixture
def out(fixture_run) -> Path:
    return fixture_run


def test_each_run_writes_its_report_beside_its_other_outputs(out):
    assert (out / "report.html").is_file() and (out / "runs" / "1" / "report.html").is_file()
    assert (out / "report.html").read_bytes() == (out / "runs" / "1" / "report.html").read_bytes()


def test_the_report_is_in_french_and_has_every_chart_as_inline_svg(out):
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in page and "Commande de vaccins les 14 et 15 juin" in page
    for chart in CHARTS:
        found = re.search(rf'<figure id="{chart}"><svg\b.*?</svg>\s*</figure>', page, re.S)
        assert found, chart
    assert "épuisé à 14/06 08:00:15" in page  # the sold-out instant, in Paris time (06:00:15 UTC)


def test_the_report_opens_offline_it_loads_nothing_from_anywhere(out):
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "@import" not in page
    # Only references inside the page (`#id`) or inline data: nothing to fetch.
    assert not re.search(r'(?:src|href)\s*=\s*(?!["\']?(?:#|data:))', page, re.I)
    assert not re.search(r"url\((?!#|data:)", page)


def test_r11_a_reallocation_s_report_says_what_changed_against_the_previous_version(out, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = "2021-06-16"\nsupply = { moderna = 80 }\n', encoding="utf-8")
    done = vialflow("reallocate", "2021-06-14", str(changes), "--out", str(folder), "--operator", "Ops",
                    "--reason", "plus de Moderna")
    assert done.returncode == 0, done.stderr
    page = (folder / "runs" / "2" / "report.html").read_text(encoding="utf-8")
    assert "Ce qui change par rapport à la version 1" in page
    assert re.search(r"<td>moderna</td><td>60</td><td>80</td>", page)
    assert "Ce qui change" not in (folder / "runs" / "1" / "report.html").read_text(encoding="utf-8")


def browser() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium on this machine: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium (apt-get install chromium)")
    return CHROMIUM


def test_the_report_renders_in_a_real_browser_with_every_chart_and_is_not_blank(out, tmp_path):
    chromium = browser()
    url = (out / "report.html").resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for chart in CHARTS:
        assert re.search(rf'<figure id="{chart}"><svg\b', dom.stdout), chart
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1100,2600",
                               f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2600, 1100)
    assert pixels.std() > 10  # a blank or one-colour page has none
    inked = (pixels < 200).mean(axis=1) > 0.01  # rows with drawing or text on them
    assert inked[:1300].mean() > 0.2 and inked[1300:].mean() > 0.2  # drawn all the way down, not just a title


# -- legible at 1280 px and on A4 ---------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
# The narrowest a chart is shown: an A4 page (210 mm at 96 px per inch) less the browser's print margins of
# 1 cm each side and the page's padding of 1rem each side. On a 1280-pixel screen a chart is 60rem (960 px).
A4_PX = 210 / 25.4 * 96 - 2 * 10 / 25.4 * 96 - 2 * 16
SCREEN_PX = 960


def charts(page: str) -> dict:
    import xml.etree.ElementTree as ElementTree

    found = re.findall(r'<figure id="(chart-[^"]+)">(<svg\b.*?</svg>)', page, re.S)
    return {name: ElementTree.fromstring(svg) for name, svg in found}


def texts(element) -> list:
    return [text for text in element.iter(f"{SVG}text")]


def ticks(svg, axis: str) -> list[str]:
    return ["".join(text.itertext()) for group in svg.iter(f"{SVG}g") if re.fullmatch(rf"{axis}tick_\d+",
                                                                                        group.get("id", ""))
            for text in texts(group)]


def test_every_text_of_every_chart_is_9_px_or_more_on_a4_and_on_screen_and_no_tick_label_is_rotated(out):
    found = charts((out / "report.html").read_text(encoding="utf-8"))
    assert sorted(found) == sorted(CHARTS)
    for name, svg in found.items():
        width = float(svg.get("viewBox").split()[2])  # the chart's own units, drawn over its shown width
        for text in texts(svg):
            size = float(re.search(r"font-size: ([\d.]+)px", text.get("style")).group(1))
            assert size * A4_PX / width >= 9 and size * SCREEN_PX / width >= 9, (name, "".join(text.itertext()))
        for group in svg.iter(f"{SVG}g"):
            if re.fullmatch(r"[xy]tick_\d+", group.get("id", "")):
                for text in texts(group):
                    assert re.fullmatch(r"rotate\(-?0 [\d. ]+\)", text.get("transform", "rotate(-0 0 0)")), name


def test_r7_the_fcfs_chart_is_zoomed_on_the_seconds_in_which_the_vaccine_sold_out(out):
    orders = pd.read_csv(FIXTURE / "orders.csv", dtype=str)
    first = pd.to_datetime(orders.loc[orders["vaccine"] == "moderna", "submitted_at"], utc=True).min()
    first = first.tz_convert("Europe/Paris").tz_localize(None)
    sold = pd.Timestamp("2021-06-14 08:00:15")  # as the page says it (test above)
    svg = charts((out / "report.html").read_text(encoding="utf-8"))["chart-timeline-moderna"]
    shown = [pd.Timestamp(f"2021-06-14 {label}") for label in ticks(svg, "x")]
    assert len(shown) >= 3 and all(re.fullmatch(r"\d\d:\d\d:\d\d", label) for label in ticks(svg, "x"))
    # the axis runs from the first line to shortly after the sold-out instant: seconds, not the morning
    assert first - pd.Timedelta(seconds=10) <= min(shown) and max(shown) <= sold + pd.Timedelta(seconds=60)
    assert min(shown) <= sold <= max(shown)


def test_r8_closed_days_have_their_own_legend_entry_in_the_capacity_chart(out):
    svg = charts((out / "report.html").read_text(encoding="utf-8"))["chart-capacity"]
    words = ["".join(text.itertext()) for text in texts(svg)]
    assert "dépôt fermé ce jour-là" in words
    # one row per depot, each named (the colour bar's ticks are y ticks too)
    assert set(pd.read_csv(FIXTURE / "depots.csv", dtype=str)["depot_id"]) <= set(ticks(svg, "y"))


def test_r4_the_gap_between_requested_and_after_caps_is_said_in_words_for_each_vaccine(out):
    from pipeline.domain.allocate import OUTRIGHT

    page = (out / "report.html").read_text(encoding="utf-8")
    lines = pd.read_csv(out / "allocations.csv", dtype={"requested": int, "allocated": int})
    gap = page[page.index('<ul id="demand-gap">'):]
    gap = " ".join(gap[:gap.index("</ul>")].split()).replace("\u202f", "")
    for vaccine, mine in lines.groupby("vaccine"):
        label = vaccine.capitalize() if vaccine != "astrazeneca" else "AstraZeneca"
        said = re.search(rf"{label} : (\d+) flacons demandés ; (\d+) sur des lignes refusées d'office et (\d+) "
                         rf"au-delà des plafonds ou de la dernière boîte entière, soit (\d+) après plafonds.*? ; "
                         rf"(\d+) attribués", gap)
        assert said, label
        requested, outright, trimmed, demand, allocated = map(int, said.groups())
        assert requested == mine["requested"].sum() and allocated == mine["allocated"].sum()
        assert outright == mine.loc[mine["reason"].isin(OUTRIGHT), "requested"].sum()
        assert requested - outright - trimmed == demand and allocated <= demand


def test_r8_the_pending_vials_are_listed_by_depot_largest_first(out):
    page = (out / "report.html").read_text(encoding="utf-8")
    deliveries = pd.read_csv(out / "deliveries.csv", dtype={"vials": int})
    pending = deliveries[deliveries["status"] == "pending"].groupby("depot_id")["vials"].sum()
    table = page[page.index('<table id="pending-depots">'):]
    table = table[:table.index("</table>")]
    shown = re.findall(r"<tr><td>([^<]+)</td><td class=\"text\">[^<]*</td><td>([\d\u202f]+)</td></tr>", table)
    assert {depot: int(vials.replace("\u202f", "")) for depot, vials in shown} == pending.to_dict()
    assert [int(vials.replace("\u202f", "")) for _, vials in shown] == sorted(pending, reverse=True)
