"""The export step of the deployed form: a run's files in `<dir>/<session id>/runs/<version>/`, whole or not at all.

A run's folder is written beside its final place and renamed into it in one step, so a reader
(a wholesaler's transfer job, a file share) never sees half a run; `latest` is a symbolic link
swapped in one rename too. Writing a run again (its emails have settled, or `vialflow export` by
hand) replaces each file by a rename: every file is always whole.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import runs
from pipeline.adapters.files.outputs import MANIFEST_INDEX
from pipeline.adapters.files.safety import inside
from pipeline.domain.vocabulary import RunStep

from .outputs import VIEWS, write_outputs
from .runs import stored_run


def export_run(engine: Engine, run: int, folder: Path, now: dt.datetime | None = None) -> Path:
    """Write the stored run's files under `folder`; returns the run's folder. With `now`, stamp the
    run exported (the pipeline's step); without, a hand-made export that changes nothing stored."""
    with engine.connect() as c:
        row = runs.run_row(c, run)
        latest = runs.latest_run(c, row.session_id)
    versions = inside(Path(folder), row.session_id, "runs")  # the session id names a folder: it must stay inside
    versions.mkdir(parents=True, exist_ok=True)
    target = versions / str(row.version)
    staging = Path(tempfile.mkdtemp(prefix=f".{row.version}-", dir=versions))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide the run from the readers of the share
    try:
        with logs.step(RunStep.EXPORT, session=row.session_id, run=row.version, run_id=run):
            write_outputs(engine, run, staging)
            if target.exists():
                missing = [name for name in VIEWS if not (staging / name).exists()]
                _replace_files(staging, target)
                for name in missing:  # a view this writing could not make is not left from an earlier one
                    (target / name).unlink(missing_ok=True)
            else:
                os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if latest.id == run:
        _point(versions.parent / "latest", Path("runs") / str(row.version))
    if now is not None:
        with engine.begin() as c:
            runs.stamp(c, run, exported_at=now)
    return target


def export_session(engine: Engine, session_id: str, version: int | None, folder: Path) -> Path:
    """`vialflow export`: any stored version (default the latest) of a session."""
    with engine.connect() as c:
        run = stored_run(c, session_id, version)
    return export_run(engine, run, folder)


def _replace_files(source: Path, target: Path) -> None:
    """Move every file of `source` over its namesake in `target`, each in one rename, the dispatch
    files' index last (a transfer job that reads it finds every file it names)."""
    for path in sorted(source.rglob("*"), key=lambda p: (p.name == MANIFEST_INDEX, str(p))):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)


def _point(link: Path, to: Path) -> None:
    """Make `link` a symbolic link to `to`, replacing the old one in one rename."""
    fresh = link.with_name(f".{link.name}-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(to, target_is_directory=True)
    os.replace(fresh, link)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
