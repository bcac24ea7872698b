"""`celery -A workers worker|beat`: the deployed form of the pipeline.

The worker's entry: its settings are read from the environment once, when Celery first needs its
configuration (not at import), and each process is wired from them when the worker starts and
again in each pool child after the fork.
"""

import logging
import os
import sys
from functools import cache

from celery.signals import celeryd_after_setup, setup_logging, worker_init, worker_process_init, worker_ready

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import EMAIL_QUEUE, app
from pipeline.settings import Settings


@cache
def settings() -> Settings:
    """This process's settings, read once; a forked pool child inherits the parent's reading."""
    return Settings.from_env()


app.add_defaults(lambda: bootstrap.celery_settings(settings()))


@setup_logging.connect
def _logs(loglevel=None, **_) -> None:
    """Celery leaves logging to this receiver: the same structured lines as every other process, at
    VIALFLOW_LOG_LEVEL or else `--loglevel` (an embedded worker keeps its command's configuration)."""
    if not bootstrap.logging_configured():
        bootstrap.configure_logging(settings(), default=logging.getLevelName(loglevel) if loglevel else "INFO")


@celeryd_after_setup.connect
def _refuse_email_without_smtp(sender, instance, **_) -> None:
    """A worker that would consume the email queue with no SMTP server would claim emails it cannot
    send: it does not start (before it consumes a single message)."""
    queues = instance.app.amqp.queues
    consumed = set(queues.consume_from or queues)
    if EMAIL_QUEUE in consumed and not bootstrap.wire_once(settings).settings.smtp_url:
        sys.stderr.write(f"vialflow: this worker would consume {EMAIL_QUEUE} but has no SMTP server: set "
                         "VIALFLOW_SMTP_URL, or start it with `-Q vialflow.pipeline` only\n")
        sys.stderr.flush()
        os._exit(2)  # Celery would turn an exception here into a traceback and go on


@worker_init.connect
def _wire(**_) -> None:
    bootstrap.wire_once(settings)


@worker_ready.connect
def _announce(**_) -> None:
    """Once the worker's logging is set up: whether its emails are signed."""
    bootstrap.wire_once(settings).announce()


@worker_process_init.connect
def _wire_child(**_) -> None:
    bootstrap.wire_once(settings).after_fork()


__all__ = ["app"]
