"""report.html: one self-contained French page per run, every chart drawn, opened in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import vialflow

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
