"""`celery -A workers worker|beat`: the deployed form of the pipeline."""

from pipeline.entrypoints.celery_app import app

__all__ = ["app"]
