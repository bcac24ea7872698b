"""The service tier: the real services and queries on an in-memory SQLite database, with fake ports."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.pool import StaticPool
from sqlalchemy import create_engine

from pipeline.adapters.db import migrate
from pipeline.adapters.files.scenario import load_scenario
from pipeline.services import confirmations, runs
from tests.conftest import EXAMPLES

CLOSED = dt.datetime(2021, 6, 16, 5, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session")
def scenario():
    """The notice-small conformance scenario, read once."""
    return load_scenario(EXAMPLES / "notice-small")


@pytest.fixture
def db():
    """A fresh in-memory database at the latest schema: one connection that every checkout shares."""
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def closed(db, scenario) -> int:
    """The session loaded and closed: its first run's id."""
    return runs.close_session(db, runs.store_scenario(db, scenario, CLOSED), CLOSED)


@pytest.fixture
def prepared(db, closed) -> int:
    """The first run allocated, scheduled and its outbox written: its id."""
    for step in (runs.allocate_run, runs.schedule_run, confirmations.prepare_confirmations):
        step(db, closed, CLOSED)
    return closed
