"""`celery -A workers worker|beat`: the deployed form of the pipeline.

The worker's entry: its settings are read from the environment when Celery first needs its
configuration (not at import), and each process is wired when the worker starts and again in
each pool child after the fork.
"""

from celery.signals import worker_init, worker_process_init

from pipeline import bootstrap
from pipeline.entrypoints.celery_app import app
from pipeline.settings import Settings

app.add_defaults(lambda: bootstrap.celery_settings(Settings.from_env()))


@worker_init.connect
def _wire(**_) -> None:
    bootstrap.wire_once(Settings.from_env)


@worker_process_init.connect
def _wire_child(**_) -> None:
    bootstrap.wire_once(Settings.from_env).after_fork()


__all__ = ["app"]
