"""The embedded mode: the deployed form's processes inside one command, and a wait on a run's progress.

An in-process Celery worker over an in-memory transport runs the pipeline's tasks (the same tasks as
`celery -A workers worker`), the loopback SMTP server writes DIR/mail/, and a thread sends beat's tick.
`vialflow run`, `reallocate`, `emails --resend` and the console on a run folder all run this; with a
broker, the same tasks go to the deployed workers and only the tick is sent from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from pipeline import bootstrap
from pipeline.domain.vocabulary import SETTLED, EmailState, RunStep
from pipeline.services import ServiceError, chain, confirmations, runs
from pipeline.settings import Settings

from .celery_app import app, send, use_broker

TICK_SECONDS = 2.0  # beat's is VIALFLOW_BEAT_SECONDS (30); a command that waits on its run looks more often


@contextlib.contextmanager
def loopback_sink(folder: Path):
    """The embedded SMTP server, in a child process writing `folder`; yields its URL."""
    child = subprocess.Popen([sys.executable, "-m", "pipeline.adapters.mail.sink", str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        port = child.stdout.readline().strip()
        if not port.isdigit():
            raise ServiceError("the embedded SMTP server did not start")
        yield f"smtp://127.0.0.1:{port}"
    finally:
        child.stdin.close()
        child.wait(timeout=30)


@contextlib.contextmanager
def in_process_worker(settings: Settings, announce: bool = True):
    """A Celery worker in a thread of this process, over an in-memory transport, wired to `settings`;
    with `announce`, it says whether its emails are signed."""
    from celery.contrib.testing.worker import start_worker

    use_broker("memory://localhost/")
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.05}
    wiring = bootstrap.wire(settings)
    if announce:
        wiring.announce()
    # Celery sets the root logger's level to the worker's: keep this command's (bootstrap.configure_logging).
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel=logging.getLogger().getEffectiveLevel(),
                      shutdown_timeout=30) as worker:
        yield
        worker.stop()  # sooner than waiting out the idle loop's poll


@contextlib.contextmanager
def ticking(seconds: float = TICK_SECONDS):
    """Beat's tick, sent every `seconds` while the block runs: emails due for another try or whose
    lease ran out are handed out again, runs whose next step's message was lost carried on."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(seconds):
            send(chain.TICK)

    thread = threading.Thread(target=tick, name="vialflow-tick", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def workers(settings: Settings, mail_folder: Path):
    """The workers of the command, and beat's tick, for as long as the block: embedded (an in-process
    worker, and the loopback SMTP server writing `mail_folder` when no other is named), else the
    broker's. Yields the SMTP URL the emails go through (None: deployed without one here)."""
    with contextlib.ExitStack() as stack:
        smtp_url = settings.smtp_url
        if settings.in_process:
            smtp_url = settings.smtp_url or stack.enter_context(loopback_sink(mail_folder))
            # Whether emails are signed matters for a real SMTP server, not for the loopback one.
            stack.enter_context(in_process_worker(replace(settings, smtp_url=smtp_url),
                                                  announce=bool(settings.smtp_url)))
        else:
            use_broker(settings.broker_url)
        stack.enter_context(ticking())
        yield smtp_url  # the SMTP server the workers send through (the loopback one, embedded)


def wait(done, timeout: float, interval: float, late: str, who: str):
    """Call `done` until it returns something true, and return that; a ServiceError past `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := done()):
        if time.monotonic() > deadline:
            raise ServiceError(f"{late} within {timeout:.0f} s; are the {who} running?")
        time.sleep(interval)
    return result


def wait_until_prepared(engine, session_id: str, show, timeout: float) -> int:
    """Until the session's latest run has its emails prepared; the run id. `show` is told each step under way."""
    def prepared():
        state = runs.progress(engine, session_id)
        if state["error"]:
            step = state["failed_step"]
            raise ServiceError(f"the pipeline failed{f' at its {step.value} step' if step else ''}: {state['error']}")
        done = state["done"]
        if done in (RunStep.PREPARE, RunStep.SEND):
            return state["run"]
        under_way = chain.CLOSE if done is None else chain.after(next(s for s in chain.RUN if s.code is done))
        show(f"{under_way.code.short} en cours")
        return None

    return wait(prepared, timeout, 0.1, "the pipeline did not finish", "workers")


def wait_until_settled(engine, run: int, show, timeout: float) -> None:
    """Until every email of the run is sent, failed or unknown (beat's tick hands out again whatever is due)."""
    def settled():
        counts = confirmations.outbox_counts(engine, run)
        waiting = sum(n for state, n in counts.items() if state not in SETTLED)
        sent = counts.get(EmailState.SENT, 0)
        show(f"{RunStep.SEND.short} : {sent} {EmailState.SENT.short}(s), {waiting} restant(s)")
        if not waiting:
            confirmations.settle(engine, run, dt.datetime.now(dt.timezone.utc))
        return not waiting

    wait(settled, timeout, 0.2, "the emails were not all sent", "email workers")
