"""Wiring, once per process: its settings in; the engine, the SMTP target and the broker out.

Each entry point reads its settings once and wires the process here: a CLI command, the
embedded runner before it starts its in-process worker, a `celery -A workers` worker at start
(and each pool child after the fork), beat. Nothing connects at import time; the engine is
built on first use, so a process that never touches the database never opens it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from pipeline.adapters import logs
from pipeline.adapters.db import make_engine
from pipeline.adapters.mail.signing import DkimKeyError, Signer
from pipeline.adapters.mail.smtp import SmtpTarget
from pipeline.services import ServiceError, chain
from pipeline.settings import Settings


@dataclass
class Wiring:
    """What the tasks of one process use."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if not self.settings.database_url:
                raise ServiceError("no database: set VIALFLOW_DATABASE_URL (or give --database-url)")
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    _signer: Signer | None = field(default=None, repr=False)
    _signer_read: bool = field(default=False, repr=False)
    _announced: bool = field(default=False, repr=False)

    @property
    def signer(self) -> Signer | None:
        """The DKIM signer, its key read once per process; None without a key."""
        if not self._signer_read:
            self._signer, self._signer_read = signer(self.settings), True
        return self._signer

    def smtp_target(self) -> SmtpTarget:
        if not self.settings.smtp_url:
            raise ServiceError("no SMTP server for the workers: set VIALFLOW_SMTP_URL")
        return replace(SmtpTarget.from_url(self.settings.smtp_url), sign=self.signer)

    def announce(self) -> None:
        """Said once when a worker starts: whether its emails are signed (never the key)."""
        if self._announced:
            return
        self._announced = True
        found = self.signer
        if found is None:
            logs.log.warning("emails are not signed: no DKIM key (set VIALFLOW_DKIM_KEY_FILE, "
                             "VIALFLOW_DKIM_SELECTOR and VIALFLOW_DKIM_DOMAIN)", extra={"event": "dkim"})
        else:
            logs.log.info("emails are signed with DKIM: %s, selector %s, domain %s", found.algorithm,
                          found.selector, found.domain, extra={"event": "dkim"})

    def after_fork(self) -> None:
        """A forked pool child must not share its parent's connections."""
        self._engine = None


_current: Wiring | None = None


def wire(settings: Settings) -> Wiring:
    """Wire this process from `settings` (replacing an earlier wiring and its engine)."""
    global _current
    if _current is not None and _current._engine is not None:
        _current._engine.dispose()
    _current = Wiring(settings)
    return _current


def wire_once(read) -> Wiring:
    """Wire from `read()` unless an entry point has wired this process already (the embedded
    runner wires before it starts its worker, and its settings win)."""
    return _current if _current is not None else wire(read())


def current() -> Wiring:
    if _current is None:
        raise ServiceError("this process is not wired: start workers with `celery -A workers worker`")
    return _current


def signer(settings: Settings) -> Signer | None:
    """A DKIM signer from the settings, or None when no key is set."""
    if not settings.dkim_key_file:
        return None
    try:
        return Signer.from_file(settings.dkim_key_file, settings.dkim_selector or "", settings.dkim_domain or "")
    except DkimKeyError as error:
        raise ServiceError(str(error)) from None


def configure_logging(settings: Settings, default: str = "INFO", stream=None, tracebacks: bool = False) -> None:
    """Structured log lines for this process (plain key=value, or JSON), at the settings' level;
    with `tracebacks` (the command line), tracebacks go to the settings' error log instead."""
    logs.configure(settings.log_format, settings.log_level or default, stream,
                   settings.error_log_path if tracebacks else None)
    logging.captureWarnings(True)


def logging_configured() -> bool:
    return logs.configured()


def celery_settings(settings: Settings) -> dict:
    """The Celery configuration that depends on the settings."""
    return {"broker_url": settings.broker_url or "memory://localhost/",
            # A tick still queued when the next one is sent is dropped (`expires`): behind a long step
            # on a busy pipeline worker, ticks would otherwise pile up and run back to back.
            "beat_schedule": {"sessions-due": {"task": chain.TICK, "schedule": settings.beat_seconds,
                                               "options": {"expires": settings.beat_seconds}}}}
