"""Entry points: the `vialflow` command, the embedded runner, the Celery app; each only translates."""
