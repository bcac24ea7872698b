"""`celery -A workers worker|beat`: the deployed form of the pipeline.

The worker's entry: its settings are read from the environment once, when Celery first needs its
configuration (not at import), and each process is wired from them when the worker starts and
again in each pool child after the fork.
"""

from functools import cache

from celery.signals import setup_logging, worker_init, worker_process_init

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import app
from pipeline.settings import Settings


@cache
def settings() -> Settings:
    """This process's settings, read once; a forked pool child inherits the parent's reading."""
    return Settings.from_env()


app.add_defaults(lambda: bootstrap.celery_settings(settings()))


@setup_logging.connect
def _logs(**_) -> None:
    """Celery leaves logging to this receiver: the same structured lines as every other process
    (an embedded worker keeps its command's configuration)."""
    if not bootstrap.logging_configured():
        bootstrap.configure_logging(settings())


@worker_init.connect
def _wire(**_) -> None:
    bootstrap.wire_once(settings).announce()


@worker_process_init.connect
def _wire_child(**_) -> None:
    bootstrap.wire_once(settings).after_fork()


__all__ = ["app"]
