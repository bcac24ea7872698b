"""The files of a run's output folder (CONTRACT.md): CSV as the contract spells it, manifests, summary.json."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path

import pandas as pd

from pipeline.domain.summary import MANIFEST_COLUMNS

from .manifest_book import manifest_book
from .safety import inside, spreadsheet_text

MANIFEST_INDEX = "index.json"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_manifests(rounds: pd.DataFrame, depots: pd.DataFrame, folder: Path, *, session: str, run: int,
                    created: dt.datetime) -> dict:
    """Each depot's dispatch file, `<wholesaler>/<depot_id>.csv` for the wholesaler's import and its
    `.xlsx` twin for the people who open it, then `index.json` naming every file with its rows, vials
    and SHA-256; returns that index.

    The CSV stays the contract's (UTF-8 without BOM, commas): a BOM would become part of the first
    column's name for a parser that does not expect one, and `;` or a `sep=` line would break every
    program that reads the contract's columns. French Excel splits such a file on `;` and reads it as
    Windows-1252, so the person's file is the twin, which it opens as it is.

    The index is removed first and written last, in one rename: a transfer job that finds it knows
    every file it names is whole. The depot id names files, so each path is checked to stay in
    `folder` whatever the reader let through; no text cell of either file may start a formula.
    `created` (the run's) is stamped in the workbooks instead of the clock: same run, same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    index_path = inside(folder, MANIFEST_INDEX)
    index_path.unlink(missing_ok=True)
    safe = rounds[MANIFEST_COLUMNS].apply(spreadsheet_text)
    by_depot = {depot: rows for depot, rows in safe.groupby("depot_id", sort=False)}
    files = []
    for depot in depots.itertuples():
        rows = by_depot.get(depot.depot_id, safe.iloc[:0]).reset_index(drop=True)
        wholesaler = slug(depot.wholesaler)
        csv_path = inside(folder, wholesaler, f"{depot.depot_id}.csv")
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        title = f"{depot.wholesaler}, dépôt {depot.depot_id}"
        for path, data in ((csv_path, rows.to_csv(index=False, lineterminator="\n").encode("utf-8")),
                           (csv_path.with_suffix(".xlsx"), manifest_book(rows, title, created))):
            path.write_bytes(data)
            files.append({"path": f"{wholesaler}/{path.name}", "rows": len(rows), "vials": int(rows["vials"].sum()),
                          "sha256": hashlib.sha256(data).hexdigest()})
    index = {"session": session, "run": int(run), "files": files}
    staged = index_path.with_name(f".{MANIFEST_INDEX}.{os.getpid()}")
    write_json(index, staged)
    os.replace(staged, index_path)
    return index


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "wholesaler"
