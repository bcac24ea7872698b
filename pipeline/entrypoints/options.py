"""What the commands share: where the database of a command is (a run folder or a URL), said as a
usage slip when it is nowhere."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.settings import DATABASE_FILE, Settings


def database_url(settings: Settings, out: Path | None) -> str:
    """The database a command reads: `--database-url` (or VIALFLOW_DATABASE_URL), else the run
    folder `--out`'s SQLite file. A folder that holds no run, or no source at all, is a slip on the
    command line (exit 2), said in one line."""
    if settings.database_url:
        return settings.database_url
    if out is None:
        raise typer.BadParameter("give --out with the folder of a run, or --database-url", param_hint="'--out'")
    if not (out / DATABASE_FILE).is_file():
        raise typer.BadParameter(f"{out} holds no run (no {DATABASE_FILE} there): give the folder of a "
                                 "`vialflow run`, or --database-url", param_hint="'--out'")
    return settings.database_for(out)
