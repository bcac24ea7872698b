"""The self-service space on PostgreSQL: an officine asks for its one-time link, which a real SMTP
server receives; the link opens its own deliveries once, and the requests are held per officine
under PostgreSQL's row locks (R12)."""

from __future__ import annotations

import email
import re
from email import policy

import pandas as pd
import pytest
from starlette.testclient import TestClient

from pipeline.adapters.db import make_engine
from pipeline.entrypoints.console.app import create_app
from pipeline.entrypoints.console.workers import Workers
from pipeline.entrypoints.runner import load_into
from pipeline.services import runs as services
from pipeline.settings import Settings

from .test_pipeline import EXAMPLE
from .test_reallocation import NOW, SESSION, complete

pytestmark = pytest.mark.integration
ORIGIN = {"Origin": "http://testserver"}


def test_r12_an_officine_signs_in_by_the_link_a_real_smtp_server_received_and_reads_its_deliveries(
        database_url, broker_url, mail_sink):
    load_into(EXAMPLE, database_url, NOW)
    engine = make_engine(database_url)
    complete(engine, services.close_session(engine, SESSION, NOW), mail_sink)
    mail_sink.received.clear()
    officines = pd.read_csv(EXAMPLE / "pharmacies.csv", dtype=str)
    finess, other = officines["finess"].iloc[0], officines["finess"].iloc[1]
    # deployed: the console sends its own emails (the links) to the SMTP server of the settings
    workers = Workers(Settings(database_url=database_url, broker_url=broker_url, smtp_url=mail_sink.url))
    app = create_app(engine, workers, public_url="http://testserver")
    with TestClient(app, follow_redirects=False) as client:
        assert client.post("/connexion/lien", data={"finess": finess}, headers=ORIGIN).status_code == 200
        [received] = mail_sink.received
        message = email.message_from_bytes(received.content, policy=policy.default)
        assert message["To"] == officines["email"].iloc[0]
        token = re.search(r"/connexion/lien/(\S+)", message.get_body(("plain",)).get_content()).group(1)
        assert client.get(f"/connexion/lien/{token}").status_code == 303
        mine = client.get("/api/mes-livraisons").json()["officines"]
        assert [o["finess"] for o in mine] == [finess] and mine[0]["sessions"][0]["runs"][0]["lines"]
        assert client.get(f"/api/officines/{other}").status_code == 403
        client.cookies.clear()
        assert client.get(f"/connexion/lien/{token}").status_code == 403
        held = [client.post("/connexion/lien", data={"finess": other}, headers=ORIGIN).status_code
                for _ in range(4)]
        assert held == [200, 200, 200, 429]
    engine.dispose()
