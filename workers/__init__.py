"""`celery -A workers worker|beat`: the deployed form of the pipeline."""

from .app import app

__all__ = ["app"]
