"""How the console hands a new run, or emails to send again, to the pipeline's workers.

Deployed: the tasks go by name to the broker of the settings, and beat sends the emails once the
run is prepared. Embedded (a run folder, no broker): the console starts what `vialflow run` starts
(pipeline/entrypoints/embedded.py): an in-process worker, the loopback SMTP server writing DIR/mail/,
and beat's tick.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from pipeline import bootstrap
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync
from pipeline.entrypoints import embedded
from pipeline.entrypoints.celery_app import send, use_broker
from pipeline.services import chain
from pipeline.settings import Settings

log = logging.getLogger("vialflow.console")


class Workers:
    def __init__(self, settings: Settings, mail_folder: Path | None = None) -> None:
        self.settings, self.mail_folder = settings, mail_folder
        self.smtp_url = settings.smtp_url
        self.sign = bootstrap.signer(settings)  # the workers' DKIM key, read once: a bad one stops the start

    def send_mail(self, sender: str, to: str, content: bytes) -> bool:
        """One email of the console itself (a one-time sign-in link), signed with the workers' DKIM key
        when one is set and sent at once through the SMTP server of the workers; True when the server
        took it. Its content is never logged."""
        if not self.smtp_url:
            log.warning("a one-time sign-in link was not sent: no SMTP server is configured (VIALFLOW_SMTP_URL)")
            return False
        target = replace(SmtpTarget.from_url(self.smtp_url), sign=self.sign)
        outcome = send_all_sync(target, [(0, sender, to, content)],
                                connections=1).get(0, (Outcome.RETRY, ""))[0]
        if outcome != Outcome.SENT:
            log.warning("a one-time sign-in link was not sent: the SMTP server answered %s", outcome.value)
        return outcome == Outcome.SENT

    def hand_over(self, run: int) -> None:
        """R11: the recorded run version goes on through allocation, scheduling and its emails."""
        send(chain.ALLOCATE.task, run)

    def send_again(self, run: int) -> None:
        """The reopened emails of `run` go to the email workers."""
        send(chain.SEND.task, run)

    @contextlib.contextmanager
    def running(self):
        """For the console's lifetime: the broker (beat ticks), or the embedded worker and its tick."""
        if not self.settings.in_process:
            use_broker(self.settings.broker_url)
            yield
            return
        with contextlib.ExitStack() as stack:
            folder = self.mail_folder or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "mail"
            self.smtp_url = stack.enter_context(embedded.workers(self.settings, folder))
            yield
