"""The self-service space (CONTRACT.md, "Self-service"): an officine signs in by a one-time link sent to
its register address and reads its own deliveries, and nothing of another officine; the link works
once, expires, and a request for an unknown FINESS is answered exactly as for a known one (R12)."""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email import policy

import dkim
import pytest

from pipeline.services import self_service
from pipeline.services.refusals import LinkRefused
from pipeline.services.self_service import LINK_LIFE

from ..conftest import vialflow
from ..test_dkim import DOMAIN, SELECTOR, add_header, dns, rsa_key
from .conftest import serving, sign_in

OFFICINE, OTHER, UNKNOWN = "690012345", "750012347", "690099999"
ORIGIN = {"Origin": "http://testserver"}


def _ask(client, finess: str):
    return client.post("/connexion/lien", data={"finess": finess}, headers=ORIGIN)


def _token(mailed: list, finess: str) -> str:
    """The token of the link in the last email, read as its recipient reads it."""
    sender, to, content = mailed[-1]
    assert to == f"officine.{finess}@pharma.example.fr"
    return link_in(content)


def link_in(content: bytes) -> str:
    text = email.message_from_bytes(content, policy=policy.default).get_body(("plain",)).get_content()
    return re.search(r"/connexion/lien/([A-Za-z0-9_-]{20,})", text).group(1)


def _as_officine(client, workers, finess: str = OFFICINE):
    client.cookies.clear()
    assert _ask(client, finess).status_code == 200
    answer = client.get(f"/connexion/lien/{_token(workers.mailed, finess)}")
    assert answer.status_code == 303 and answer.headers["location"] == "/mes-livraisons"
    return client


def test_r12_an_officine_signed_in_by_its_link_reads_its_own_deliveries_as_lookup_json_gives_them(
        client, workers, folder):
    _as_officine(client, workers)
    mine = client.get("/api/mes-livraisons")
    assert mine.status_code == 200
    done = vialflow("lookup", OFFICINE, "--out", str(folder), "--json")
    assert mine.json() == {"officines": [json.loads(done.stdout)]}
    page = client.get("/mes-livraisons")
    assert page.status_code == 200 and "Mes livraisons" in page.text and OFFICINE in page.text
    assert "doses" in page.text and "Explication" in page.text
    assert client.get(f"/api/officines/{OFFICINE}").status_code == 200


@pytest.mark.parametrize("path", [f"/officines/{OTHER}", f"/api/officines/{OTHER}", "/sessions/2021-06-14",
                                  "/sessions/2021-06-14/emails", "/admin/journal", "/api/orders/A-0859436/explanation",
                                  "/lignes/A-0859436/explication", f"/officines/{OTHER}/emails/1"])
def test_r12_an_officine_reads_nothing_of_another_officine_nor_any_operator_page(client, workers, path):
    _as_officine(client, workers)
    assert client.get(path).status_code == 403


def test_r12_the_link_works_once(client, workers):
    assert _ask(client, OFFICINE).status_code == 200
    token = _token(workers.mailed, OFFICINE)
    assert client.get(f"/connexion/lien/{token}").status_code == 303
    client.cookies.clear()
    again = client.get(f"/connexion/lien/{token}")
    assert again.status_code == 403 and "vialflow_session" not in again.headers.get("set-cookie", "")
    assert client.get("/api/mes-livraisons").status_code == 401


def test_r12_the_link_expires_after_15_minutes(client, workers, engine):
    assert _ask(client, OFFICINE).status_code == 200
    token = _token(workers.mailed, OFFICINE)
    later = dt.datetime.now(dt.timezone.utc) + LINK_LIFE + dt.timedelta(seconds=1)
    with pytest.raises(LinkRefused):
        self_service.redeem_link(engine, token, "127.0.0.1", later)
    # still unused: within its 15 minutes it signs in
    assert self_service.redeem_link(engine, token, "127.0.0.1", dt.datetime.now(dt.timezone.utc)).finesses == (
        OFFICINE,)


def test_r12_an_unknown_finess_is_answered_exactly_as_a_known_one_and_gets_no_email(client, workers):
    known, unknown = _ask(client, OFFICINE), _ask(client, UNKNOWN)
    assert (known.status_code, known.text, sorted(known.headers.keys())) == (
        unknown.status_code, unknown.text, sorted(unknown.headers.keys()))
    assert [to for _, to, _ in workers.mailed] == [f"officine.{OFFICINE}@pharma.example.fr"]


def test_r12_links_are_held_per_officine_whether_or_not_it_exists(client, workers):
    for finess in (OFFICINE, UNKNOWN):
        answers = [_ask(client, finess).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429], (finess, answers)


def test_r12_the_journal_names_the_officine_and_never_the_token(client, workers, engine):
    _as_officine(client, workers)
    client.get("/api/mes-livraisons")
    token = _token(workers.mailed, OFFICINE)
    from pipeline.services import audit

    rows = audit.log(engine)
    assert any(r["action"] == "self_view" and r["actor"] == f"officine:{OFFICINE}" for r in rows)
    assert any(r["action"] == "link_request" and r["target"] == OFFICINE for r in rows)
    assert token not in json.dumps(rows, default=str)


def test_r12_support_still_reads_any_officine(client):
    sign_in(client, "sophie")
    assert client.get(f"/api/officines/{OTHER}").status_code == 200
    assert client.get("/api/mes-livraisons").status_code == 403


def _post(base: str, path: str, form: dict) -> tuple[int, str]:
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _get(base: str, path: str) -> tuple[int, dict]:
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(Stay()).open(base + path, timeout=30) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_r12_the_link_reaches_the_officine_through_the_loopback_sink_and_works_once(folder, tmp_path):
    """`vialflow console --out DIR` as an operator starts it: the link goes out through the embedded
    SMTP server into DIR/mail/, as the officine's email."""
    mail = folder / "mail"
    before = set(mail.glob("*.eml"))
    with serving(folder, tmp_path / "console.log") as (base, _):
        assert _post(base, "/connexion/lien", {"finess": UNKNOWN})[0] == 200
        status, text = _post(base, "/connexion/lien", {"finess": OFFICINE})
        assert status == 200 and "un lien de connexion vient d" in text
        deadline = time.monotonic() + 30
        while not (arrived := sorted(set(mail.glob("*.eml")) - before)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(arrived) == 1, arrived  # the known FINESS only
        received = email.message_from_bytes(arrived[0].read_bytes(), policy=policy.default)
        assert received["To"] == f"officine.{OFFICINE}@pharma.example.fr"
        token = link_in(arrived[0].read_bytes())
        first, headers = _get(base, f"/connexion/lien/{token}")
        assert first == 303 and headers["location"] == "/mes-livraisons" and "vialflow_session=" in headers[
            "set-cookie"]
        assert _get(base, f"/connexion/lien/{token}")[0] == 403
    assert token not in (tmp_path / "console.log").read_text()


def test_r9_the_link_email_is_signed_with_the_workers_dkim_key_and_verifies_with_its_public_key(folder, tmp_path):
    """The console sends the link itself, and signs it as the workers sign the confirmations: dkimpy
    verifies it against the selector's record, its Message-ID is on the sending domain, and one more
    Subject on top breaks the signature."""
    key, record = rsa_key(tmp_path)
    env = {"VIALFLOW_DKIM_KEY_FILE": str(key), "VIALFLOW_DKIM_SELECTOR": SELECTOR, "VIALFLOW_DKIM_DOMAIN": DOMAIN,
           "VIALFLOW_MAIL_FROM": f"Vaccination COVID-19 <ne-pas-repondre@{DOMAIN.upper()}>"}
    mail = folder / "mail"
    before = set(mail.glob("*.eml"))
    with serving(folder, tmp_path / "console.log", env=env) as (base, _):
        assert _post(base, "/connexion/lien", {"finess": OFFICINE})[0] == 200
        deadline = time.monotonic() + 30
        while not (arrived := sorted(set(mail.glob("*.eml")) - before)) and time.monotonic() < deadline:
            time.sleep(0.2)
    [path] = arrived
    raw = path.read_bytes()
    assert raw.startswith(b"DKIM-Signature: ") and dkim.verify(raw, dnsfunc=dns(record))
    received = email.message_from_bytes(raw, policy=policy.default)
    assert received["To"] == f"officine.{OFFICINE}@pharma.example.fr" and link_in(raw)
    assert re.fullmatch(r"<[^@<>]+@" + re.escape(DOMAIN) + ">", str(received["Message-ID"]))
    assert not dkim.verify(add_header(raw, "Subject: Votre lien", "top"), dnsfunc=dns(record))


def test_r12_the_page_explains_each_line_as_vialflow_explain_does(engine):
    from sqlalchemy import text

    from pipeline.services import explain

    with engine.connect() as c:
        order_ids = list(c.execute(text("SELECT DISTINCT order_id FROM decisions ORDER BY order_id")).scalars())
    at_once = explain.explain_lines(engine, "2021-06-14", 1, order_ids)
    assert sorted(at_once) == order_ids
    for order_id in order_ids:
        assert at_once[order_id] == explain.explain(engine, order_id, "2021-06-14", 1), order_id


def test_an_issuer_without_its_client_is_one_line_naming_what_to_set(folder):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    env["VIALFLOW_OIDC_ISSUER"] = "https://auth.example.fr"
    done = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "console", "--out", str(folder)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "VIALFLOW_OIDC_CLIENT_ID" in line and "VIALFLOW_OIDC_CLIENT_SECRET_FILE" in line


def test_the_self_service_page_sends_a_browser_without_a_session_to_its_own_sign_in(client):
    answer = client.get("/mes-livraisons")
    assert answer.status_code == 303 and answer.headers["location"] == "/connexion"
    assert client.get("/api/mes-livraisons").status_code == 401
    assert "Recevoir un lien de connexion" in client.get("/connexion").text
