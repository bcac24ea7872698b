"""The files of a run's output folder (CONTRACT.md): CSV as the contract spells it, manifests, summary.json."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pandas as pd

from pipeline.domain.summary import MANIFEST_COLUMNS

from .safety import inside, spreadsheet_text


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_manifests(rounds: pd.DataFrame, depots: pd.DataFrame, folder: Path) -> None:
    """One dispatch file per wholesaler and depot: what each round carries, day by day.

    The depot id names a file, so the path is checked to stay in `folder` whatever the reader let
    through; wholesalers open these files in a spreadsheet, so no text in them may start a formula."""
    for depot in depots.itertuples():
        path = inside(folder, slug(depot.wholesaler), f"{depot.depot_id}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(rounds[rounds["depot_id"] == depot.depot_id][MANIFEST_COLUMNS].apply(spreadsheet_text), path)


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "wholesaler"
