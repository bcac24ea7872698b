"""How the console hands a new run, or emails to send again, to the pipeline's workers.

Deployed: the tasks go by name to the broker of the settings, and beat sends the emails once the
run is prepared. Embedded (a run folder, no broker): the console starts what `vialflow run` starts,
an in-process worker and the loopback SMTP server writing DIR/mail/, and a tick that does beat's work.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from pipeline.entrypoints.celery_app import app
from pipeline.entrypoints.runner import ALLOCATE, FAN_OUT, _in_process_worker, _loopback_sink
from pipeline.settings import Settings

TICK, TICK_SECONDS = "schedules.tick", 2.0


class Workers:
    def __init__(self, settings: Settings, mail_folder: Path | None = None) -> None:
        self.settings, self.mail_folder = settings, mail_folder

    def hand_over(self, run: int) -> None:
        """R11: the recorded run version goes on through allocation, scheduling and its emails."""
        app.send_task(ALLOCATE, args=[run])

    def send_again(self, run: int) -> None:
        """The reopened emails of `run` go to the email workers."""
        app.send_task(FAN_OUT, args=[run])

    @contextlib.contextmanager
    def running(self):
        """For the console's lifetime: the broker, or the embedded worker and its tick."""
        if not self.settings.in_process:
            app.conf.broker_url = self.settings.broker_url
            yield
            return
        with contextlib.ExitStack() as stack:
            folder = self.mail_folder or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "mail"
            smtp_url = self.settings.smtp_url or stack.enter_context(_loopback_sink(folder))
            stack.enter_context(_in_process_worker(replace(self.settings, smtp_url=smtp_url)))
            stop = threading.Event()
            ticker = threading.Thread(target=self._tick, args=(stop,), name="console-tick", daemon=True)
            ticker.start()
            try:
                yield
            finally:
                stop.set()
                ticker.join(timeout=10)

    @staticmethod
    def _tick(stop: threading.Event) -> None:
        while not stop.wait(TICK_SECONDS):
            app.send_task(TICK)
