"""The Celery application: settings for a pipeline that must lose nothing.

Tasks are idempotent, so a message is acknowledged only once its task is done (`acks_late`)
and put back when its worker dies; each worker takes one message at a time. Email has its own
queue so sending never delays allocation.

Only what does not depend on the settings is here: the broker comes from the entry point
(`workers` reads the environment when the worker starts; the embedded runner sets its own), and
the tasks register themselves by the modules named in `include`, so this package never imports
`workers`.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from pipeline.services import chain

PIPELINE_QUEUE, EMAIL_QUEUE = "vialflow.pipeline", "vialflow.email"

app = Celery("vialflow", include=["workers.tasks", "schedules"])
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    task_acks_on_failure_or_timeout=True,
    broker_transport_options={"confirm_publish": True},
    broker_connection_retry_on_startup=True,
    task_default_queue=PIPELINE_QUEUE,
    task_queues=[Queue(PIPELINE_QUEUE), Queue(EMAIL_QUEUE)],
    task_routes={chain.EMAIL_TASKS: {"queue": EMAIL_QUEUE}},
    task_create_missing_queues=False,
    worker_hijack_root_logger=False,
    timezone="UTC", enable_utc=True,
)


def use_broker(url: str) -> None:
    """Send this process's tasks to `url` from now on. The app caches its connections and producers
    for the broker it last used: they are closed first, or a process that moves from one broker to
    another (the embedded runner after a deployed command, a test after another) would still send
    through the old one."""
    if app.conf.broker_url != url:
        app.close()
        # The producers are cached apart, on the old connections; Celery drops them the same way after
        # a fork (Celery._after_fork), and offers no public call that does.
        app.amqp._producer_pool = None
        app.conf.broker_url = url


def send(task: str, *args) -> None:
    """Hand the task named `task` (pipeline/services/chain.py) to the workers; ids only, as JSON."""
    app.send_task(task, args=list(args))
