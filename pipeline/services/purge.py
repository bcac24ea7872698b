"""`vialflow purge`: a settled session's personal data removed once its retention has passed.

The names and email addresses of the session's officines and professionals were kept only to
write the confirmation emails; once every email of every run has settled and `keep_days` have
passed, they are blanked, with the copies of the messages a run folder keeps. Ids, volumes,
dates, decisions, outcomes and the audit log stay: lookup, explain, runs and export still answer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import queries
from pipeline.domain.outbox import TERMINAL

from . import ServiceError


def purge_session(engine: Engine, session_id: str, keep_days: int, operator: str, reason: str, now: dt.datetime,
                  mail_folder: Path | None = None) -> dict:
    """Blank the session's register names and addresses (and remove its .eml copies in
    `mail_folder`); returns the counts. Refuses a session still open, with emails not all settled,
    or settled less than `keep_days` ago."""
    if not operator.strip():
        raise ServiceError("an operator name is required (--operator)")
    if not reason.strip():
        raise ServiceError("a reason is required (--reason)")
    if keep_days < 0:
        raise ServiceError("--keep-days must be 0 or more")
    with engine.begin() as c:
        session = queries.session_row(c, session_id, lock=True)
        if session is None:
            raise ServiceError(f"unknown session {session_id}")
        found = queries.session_settlement(c, session_id, TERMINAL)
        if session.state != "closed" or not found["runs"]:
            raise ServiceError(f"session {session_id} is not closed: nothing can be purged yet")
        if not found["settled"]:
            raise ServiceError(f"session {session_id} has {found['waiting']} email(s) not settled yet: "
                               "purge it once every email is sent, failed or unknown")
        settled_at = _aware(found["settled_at"]) if found["settled_at"] else now
        until = settled_at + dt.timedelta(days=keep_days)
        if now < until:
            raise ServiceError(f"session {session_id} is kept until {until:%Y-%m-%d %H:%M} UTC "
                               f"({keep_days} days after its emails settled)")
        with logs.step("purge", session=session_id) as counts:
            counts.update(queries.blank_contacts(c, session_id))
            counts["messages"] = _remove_messages(mail_folder, session_id)
            queries.record_action(c, now, operator.strip(), "purge", session_id=session_id, reason=reason.strip(),
                                  target=session_id, detail={"keep_days": keep_days, **counts})
    return dict(counts)


def _remove_messages(folder: Path | None, session_id: str) -> int:
    """The run folder's copies of the session's emails (`<session>-r<run>-<recipient>.eml`)."""
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    for path in sorted(folder.glob("*.eml")):
        if path.name.startswith(f"{session_id}-r") and path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    return removed


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
