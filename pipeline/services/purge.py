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
from pipeline.adapters.db import actions, retention, sessions
from pipeline.domain.vocabulary import SETTLED, Action, SessionState

from .refusals import (EmailsNotSettled, NegativeRetention, OperatorRequired, ReasonRequired, RetentionNotOver,
                       SessionNotClosed, UnknownSession)


def purge_session(engine: Engine, session_id: str, keep_days: int, operator: str, reason: str, now: dt.datetime,
                  mail_folder: Path | None = None) -> dict:
    """Blank the session's register names and addresses (and remove its .eml copies in
    `mail_folder`); returns the counts. Refuses a session still open, with emails not all settled,
    or settled less than `keep_days` ago."""
    if not operator.strip():
        raise OperatorRequired()
    if not reason.strip():
        raise ReasonRequired()
    if keep_days < 0:
        raise NegativeRetention(keep_days)
    with engine.begin() as c:
        session = sessions.session_row(c, session_id, lock=True)
        if session is None:
            raise UnknownSession(session_id)
        found = retention.session_settlement(c, session_id, SETTLED)
        if session.state != SessionState.CLOSED or not found["runs"]:
            raise SessionNotClosed(session_id)
        if not found["settled"]:
            raise EmailsNotSettled(session_id, found["waiting"])
        settled_at = _aware(found["settled_at"]) if found["settled_at"] else now
        until = settled_at + dt.timedelta(days=keep_days)
        if now < until:
            raise RetentionNotOver(session_id, until, keep_days)
        with logs.step(Action.PURGE, session=session_id) as counts:
            counts.update(retention.blank_contacts(c, session_id))
            counts["messages"] = _remove_messages(mail_folder, session_id)
            actions.record_action(c, now, operator.strip(), Action.PURGE, session_id=session_id, reason=reason.strip(),
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
