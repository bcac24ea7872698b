"""The Prometheus collector of `vialflow metrics`: one database read per scrape, translated to metric families."""

from __future__ import annotations

import datetime as dt

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector as Base

from pipeline.services.metrics import snapshot


class Collector(Base):
    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        found = snapshot(self.engine, dt.datetime.now(dt.timezone.utc))
        emails = GaugeMetricFamily("vialflow_emails", "Confirmation emails (outbox rows) per session, run and state.",
                                   labels=["session", "run", "state"])
        for session, run, state, n in found.emails:
            emails.add_metric([session, run, state], n)
        yield emails
        vials = GaugeMetricFamily("vialflow_vials", "Vials per session, run, vaccine and stage "
                                  "(requested, allocated, scheduled, pending).",
                                  labels=["session", "run", "vaccine", "stage"])
        for session, run, vaccine, stage, n in found.vials:
            vials.add_metric([session, run, vaccine, stage], n)
        yield vials
        lines = GaugeMetricFamily("vialflow_lines", "Order lines per session, run, vaccine, status and reason.",
                                  labels=["session", "run", "vaccine", "status", "reason"])
        for session, run, vaccine, status, reason, n in found.lines:
            lines.add_metric([session, run, vaccine, status, reason], n)
        yield lines
        oldest = GaugeMetricFamily("vialflow_oldest_waiting_email_seconds",
                                   "Age of the oldest email still waiting to be sent (since its outbox was written).",
                                   labels=["session"])
        for session, seconds in found.oldest_waiting:
            oldest.add_metric([session], seconds)
        yield oldest
        steps = GaugeMetricFamily("vialflow_step_last_duration_seconds",
                                  "Each step's duration in the session's latest run, from the run's stamps.",
                                  labels=["session", "run", "step"])
        for session, run, step, seconds in found.steps:
            steps.add_metric([session, run, step], seconds)
        yield steps
        failed = GaugeMetricFamily("vialflow_run_failed", "1 for a run whose step failed for good (part=step) or "
                                   "whose report could not be written, its data files written all the same "
                                   "(part=view).", labels=["session", "run", "part"])
        for session, run, part in found.failures:
            failed.add_metric([session, run, part], 1)
        yield failed
