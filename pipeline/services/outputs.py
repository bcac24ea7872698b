"""A stored run written out as the output folder of CONTRACT.md; everything is read back from the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import lines, outbox, runs, sessions
from pipeline.adapters.files.outputs import MANIFEST_INDEX, write_csv, write_json, write_manifests, write_whole
from pipeline.adapters.files.report import render_report, write_report
from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.sink import save_message
from pipeline.domain.allocate import ALLOCATION_COLUMNS
from pipeline.domain.schedule import DELIVERY_COLUMNS
from pipeline.domain.report import report_data
from pipeline.domain.summary import emails_summary, manifest_rounds, summarise

from .letters import confirmations
from .runs import depot_days_with_changes

MAIL_CHUNK = 500  # outbox rows whose emails are rebuilt at once


@dataclass(frozen=True)
class Written:
    summary: dict                 # summary.json's content
    view_failure: str | None      # why a view (report.html) could not be written; None: every file is


def write_outputs(engine: Engine, run: int, out: Path) -> Written:
    """One run's files: first the contract's data files, each whole (allocations.csv,
    deliveries.csv, rejections.csv, the dispatch files and their index, summary.json), then the
    views (report.html). A view that fails is logged with its traceback and recorded on the run
    (`runs.view_failure`, cleared by a later writing that succeeds): it never costs a data file."""
    summary, (row, session, pharmacies, depots, read, emails) = _write_data(engine, run, out)
    failure = None
    try:
        with engine.connect() as c:
            report = _report_data(c, row, session, pharmacies, depots, read, emails)
        write_report(report, out / "report.html")
    except Exception as error:  # noqa: BLE001 - any failure of a view is recorded, never raised
        failure = f"report.html: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500]
        logs.log.error("the report could not be written; the data files are", exc_info=True, extra={
            "session": row.session_id, "run": row.version, "run_id": run, "step": "report", "event": "view_failed"})
    if failure != row.view_failure:
        with engine.begin() as c:
            runs.stamp(c, run, view_failure=failure)
    return Written(summary, failure)


def write_data(engine: Engine, run: int, out: Path) -> dict:
    """The run's data files alone, as write_outputs writes them; summary.json's content."""
    return _write_data(engine, run, out)[0]


def _write_data(engine: Engine, run: int, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    with engine.connect() as c:
        gathered = row, session, pharmacies, depots, read, emails = _gathered(c, run)
        rejections = sessions.rejections(c, row.session_id)
    # allocations.csv's sorted copy of the lines is let go once written, before the other files are built
    write_csv(read.lines.sort_values(["finess", "rank"], kind="stable")[ALLOCATION_COLUMNS].reset_index(drop=True),
              out / "allocations.csv")
    deliveries = _deliveries(read)
    write_csv(deliveries, out / "deliveries.csv")
    write_csv(rejections, out / "rejections.csv")
    write_manifests(manifest_rounds(deliveries, pharmacies, depots, session), depots, out / "manifests",
                    session=session.id, run=row.version, created=row.created_at)
    summary = summarise(session, row, read.lines, deliveries, pharmacies)
    summary["emails"] = emails
    write_json(summary, out / "summary.json")
    return summary, gathered


VIEWS = ("report.html",)  # the files of a run folder outside the contract


def publish(run_folder: Path, out: Path) -> None:
    """The top level of an output folder shows its latest run: each file of `run_folder` copied up
    whole, the dispatch files' index last; a view the run could not write is not left from an
    earlier run."""
    files = sorted((p for p in run_folder.rglob("*") if p.is_file()), key=lambda p: p.name == MANIFEST_INDEX)
    for path in files:
        target = out / path.relative_to(run_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_whole(target, path.read_bytes())
    for name in VIEWS:
        if not (run_folder / name).exists():
            (out / name).unlink(missing_ok=True)


def report_html(engine: Engine, run: int) -> tuple[str, dict]:
    """The run's report.html alone, as write_outputs writes it, and the email counts it drew."""
    with engine.connect() as c:
        row, session, pharmacies, depots, read, emails = _gathered(c, run)
        data = _report_data(c, row, session, pharmacies, depots, read, emails)
    return render_report(data), emails


def _gathered(c, run: int):
    """What both the files and the report of a run read: its row, rules, officines and depots
    registers, lines with their deliveries, and the summary of its emails."""
    row = runs.run_row(c, run)
    return (row, sessions.session_rules(c, row.session_id), sessions.registers(c, row.session_id, "pharmacies"),
            sessions.registers(c, row.session_id, "depots"), lines.read(c, run, row.session_id),
            emails_summary(outbox.outbox_counts(c, run)))


def _report_data(c, row, session, pharmacies, depots, read, emails: dict):
    """What report.html draws: the run's lines and deliveries beside the previous version's."""
    depot_days = depot_days_with_changes(sessions.registers(c, row.session_id, "depot_days"), row.changes)
    before = runs.previous_run(c, row)
    previous = lines.read(c, before.id, row.session_id) if before is not None else None
    return report_data(session, row, read.lines, read.deliveries, pharmacies, depots, depot_days, emails,
                       None if previous is None else (previous.lines, previous.deliveries))


def _deliveries(read: lines.Lines) -> pd.DataFrame:
    """deliveries.csv: by order id, each line's dated days first in date order, then its pending remainder."""
    frame = read.deliveries.assign(finess=read.deliveries["order_id"].map(read.lines.set_index("order_id")["finess"]))
    frame["delivery_date"] = pd.to_datetime(frame["delivery_date"]).dt.strftime("%Y-%m-%d").fillna("")
    pending_last = frame["delivery_date"].replace("", "9999-12-31")
    order = frame.assign(_key=pending_last).sort_values(["order_id", "_key"], kind="stable").index
    return frame.loc[order, DELIVERY_COLUMNS].reset_index(drop=True)


def write_mail_copies(engine: Engine, run: int, folder: Path, sender: str, sign=None) -> int:
    """A copy of each email of the run handed to an outside SMTP server, rebuilt from the stored run
    (and signed again by `sign`, the DKIM signer, when there is one)."""
    written = 0
    with engine.connect() as c:
        row = runs.run_row(c, run)
        sent = outbox.outbox_rows(c, run, "sent")
        for start in range(0, len(sent), MAIL_CHUNK):
            for confirmation in confirmations(c, row, sent.iloc[start:start + MAIL_CHUNK], sender):
                message = render(confirmation)
                save_message(folder, sign(message) if sign is not None else message, overwrite=True)
                written += 1
    return written
