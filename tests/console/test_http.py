"""The console at the HTTP level: every route and role, sign-in and its rate limit, CSRF, the audit
rows, the security headers, and bad input said in French with nothing changed."""

from __future__ import annotations

import datetime as dt
import html
import json

import pandas as pd
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from pipeline.entrypoints.console.app import create_app
from pipeline.services.accounts import add_user
from tests.conftest import vialflow

from .conftest import PASSWORDS, RecordingWorkers, sign_in

SESSION = "2021-06-14"
PAGES = ["/", "/officines/010023456", "/lignes/A-0544032/explication", f"/sessions/{SESSION}",
         f"/sessions/{SESSION}/versions/1/rapport", f"/sessions/{SESSION}/versions/1/suivi",
         f"/sessions/{SESSION}/reallocation", f"/sessions/{SESSION}/emails", "/admin/comptes", "/admin/journal"]
OPERATOR_PAGES = [f"/sessions/{SESSION}/reallocation", f"/sessions/{SESSION}/emails"]
ADMIN_PAGES = ["/admin/comptes", "/admin/journal"]
CHANGES = {"effective": "2021-06-22", "supply": {"moderna": 100}}


def allocations(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "allocations.csv", dtype=str, keep_default_na=False)


def runs_count(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM runs")).scalar()


def actions(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text("SELECT * FROM actions ORDER BY id"))]


def csrf(client: TestClient) -> dict:
    return {"X-CSRF-Token": client.cookies["csrftoken"]}


# Without a session.

@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_session_redirects_to_the_sign_in_page(client, path):
    answer = client.get(path)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


@pytest.mark.parametrize("method,path", [("GET", "/api/officines/010023456"), ("GET", "/api/orders/A-0544032/explanation"),
                                         ("POST", f"/api/sessions/{SESSION}/reallocations")])
def test_an_api_route_without_a_session_answers_401(client, method, path):
    answer = client.request(method, path, json={"changes": CHANGES, "preview": True})
    assert answer.status_code == 401 and "Connexion requise" in answer.json()["error"]


# Signing in.

def test_sign_in_sets_http_only_same_site_session_and_csrf_cookies_not_secure_over_http(client):
    answer = client.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookies = {c.split("=")[0]: c for c in answer.headers.get_list("set-cookie")}
    assert set(cookies) == {"vialflow_session", "csrftoken"}
    for cookie in cookies.values():
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_when_the_console_is_served_over_tls(engine, folder):
    with TestClient(create_app(engine, RecordingWorkers(), folder), base_url="https://testserver",
                    follow_redirects=False) as client:
        answer = client.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]})
    assert answer.status_code == 303
    assert all("Secure" in c for c in answer.headers.get_list("set-cookie"))


def test_a_wrong_password_is_refused_in_french_and_opens_no_session(client):
    answer = client.post("/login", data={"username": "sophie", "password": "not-her-password"})
    assert answer.status_code == 401 and "Identifiant ou mot de passe incorrect" in answer.text
    assert "vialflow_session" not in answer.headers.get("set-cookie", "")
    assert client.get("/api/officines/010023456").status_code == 401


def test_five_refused_sign_ins_hold_back_that_account_from_that_address_in_every_console_process_not_elsewhere(
        client, engine, folder):
    for _ in range(5):
        assert client.post("/login", data={"username": "sophie", "password": "wrong-wrong"}).status_code == 401
    answer = client.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]})
    assert answer.status_code == 429 and "Trop de tentatives" in answer.text
    assert 1 <= int(answer.headers["retry-after"]) <= 30
    # A second console process over the same database counts the same refusals.
    with TestClient(create_app(engine, RecordingWorkers(), folder), follow_redirects=False) as other:
        assert other.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]}).status_code == 429
    # The owner, from another address, signs in: an attacker's count never locks the owner out.
    with TestClient(create_app(engine, RecordingWorkers(), folder), follow_redirects=False,
                    client=("10.0.0.9", 50000)) as elsewhere:
        assert elsewhere.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]}).status_code == 303
    journal = [(a["actor"], a["action"], a["address"]) for a in actions(engine) if a["action"].startswith("sign_in")]
    assert journal[:6] == [("sophie", "sign_in_refused", "testclient")] * 5 + [("sophie", "sign_in_locked", "testclient")]
    assert journal[-1] == ("sophie", "sign_in", "10.0.0.9")
    assert all("wrong-wrong" not in str(a) for a in actions(engine))


def test_refused_sign_ins_for_many_accounts_from_one_address_hold_back_that_address(client, engine):
    names = [f"agent{n}" for n in range(6)]
    for name in names:
        add_user(engine, name, "support", f"{name}-long-password-xq", dt.datetime.now(dt.timezone.utc))
    for name in names:  # 6 accounts x 5 refusals: the address's 30 free tries
        for _ in range(5):
            assert client.post("/login", data={"username": name, "password": "guessing-123"}).status_code == 401
    assert client.post("/login", data={"username": "olivier", "password": PASSWORDS["olivier"]}).status_code == 429


def test_an_unknown_name_is_journaled_without_the_name_typed(client, engine):
    assert client.post("/login", data={"username": "hunter2-typed-here", "password": "x"}).status_code == 401
    refused = [a for a in actions(engine) if a["action"] == "sign_in_refused"]
    assert [(a["actor"], json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"]) for a in refused] \
        == [("?", {"account": "unknown"})]
    assert "hunter2" not in json.dumps([{k: str(v) for k, v in a.items()} for a in actions(engine)])


def test_a_sign_in_posted_from_another_site_is_refused(client):
    answer = client.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]},
                         headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "vialflow_session" not in answer.headers.get("set-cookie", "")


def test_signing_out_ends_the_session_on_the_server(client):
    sign_in(client, "sophie")
    token = client.cookies["vialflow_session"]
    answer = client.post("/logout", data={"csrftoken": client.cookies["csrftoken"]})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    client.cookies.set("vialflow_session", token)
    assert client.get("/api/officines/010023456").status_code == 401


def test_an_expired_session_gives_401_to_the_api_and_the_sign_in_page_to_a_browser(client, engine):
    sign_in(client, "sophie")
    with engine.begin() as c:
        c.execute(text("UPDATE console_sessions SET expires_at = :past"),
                  {"past": dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)})
    assert client.get("/api/officines/010023456").status_code == 401
    answer = client.get("/officines/010023456")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?expiree=1"
    assert "Votre session a expiré" in client.get("/login?expiree=1").text


def test_passwords_are_stored_as_argon2id_hashes(engine):
    with engine.connect() as c:
        hashes = c.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(p in h for h in hashes for p in PASSWORDS.values())


# Headers.

@pytest.mark.parametrize("path", ["/login", "/", "/api/officines/010023456", "/static/console.css", "/nowhere"])
def test_every_answer_carries_the_security_headers(client, path):
    sign_in(client, "sophie")
    headers = client.get(path).headers
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_no_page_has_an_inline_script_or_style(client, folder):
    sign_in(client, "adele")
    finess = allocations(folder)["finess"].iloc[0]
    for path in [p for p in PAGES if "rapport" not in p] + [f"/officines/{finess}"]:
        body = client.get(path).text
        assert "<script" not in body and "style=" not in body and "<style" not in body, path


# Support: read.

def test_support_reads_an_officine_as_vialflow_lookup_json_gives_it(client, folder):
    finess = allocations(folder)["finess"].iloc[0]
    sign_in(client, "sophie")
    answer = client.get(f"/api/officines/{finess}")
    done = vialflow("lookup", finess, "--out", str(folder), "--json")
    assert answer.status_code == 200 and done.returncode == 0, done.stderr
    assert answer.json() == json.loads(done.stdout)


def test_the_officine_page_shows_its_deliveries_with_french_dates_depot_and_why_links(client, folder):
    table = allocations(folder)
    deliveries = pd.read_csv(folder / "deliveries.csv", dtype=str, keep_default_na=False)
    scheduled = deliveries[deliveries["status"] == "scheduled"].iloc[0]
    sign_in(client, "sophie")
    page = client.get(f"/officines/{scheduled['finess']}")
    assert page.status_code == 200
    day = dt.date.fromisoformat(scheduled["delivery_date"])
    assert f"{day.day} juin 2021" in page.text and scheduled["depot_id"] in page.text
    for order_id in table.loc[table["finess"] == scheduled["finess"], "order_id"]:
        assert f"/lignes/{order_id}/explication" in page.text


def test_support_reads_an_explanation_as_vialflow_explain_json_gives_it(client, folder):
    line = allocations(folder).query("reason == 'supply'").iloc[0]
    sign_in(client, "sophie")
    answer = client.get(f"/api/orders/{line['order_id']}/explanation")
    done = vialflow("explain", line["order_id"], "--out", str(folder), "--json")
    assert answer.status_code == 200 and answer.json() == json.loads(done.stdout)
    page = client.get(f"/lignes/{line['order_id']}/explication")
    assert page.status_code == 200 and "heure de Paris" in page.text


def test_search_by_name_is_a_post_and_the_name_never_reaches_an_address(client, engine):
    with engine.connect() as c:
        finess, name = c.execute(text("SELECT finess, name FROM pharmacies ORDER BY finess LIMIT 1")).one()
    sign_in(client, "sophie")
    answer = client.post("/recherche", data={"q": name[2:12], "csrftoken": client.cookies["csrftoken"]})
    assert answer.status_code == 200 and f"/officines/{finess}" in answer.text
    assert client.get(f"/recherche?q={name}").status_code == 405
    by_number = client.post("/recherche", data={"q": finess, "csrftoken": client.cookies["csrftoken"]})
    assert by_number.status_code == 303 and by_number.headers["location"] == f"/officines/{finess}"
    assert all(name not in str(row) for row in actions(engine))


def test_support_reads_the_emails_of_an_officine_and_its_professionals_as_sent_without_an_rpps_in_the_address(
        client, engine, folder):
    table = allocations(folder)
    named = table[table["effector"].isin(["medecin", "sage_femme", "medecin_travail"]) & (table["rpps"] != "")]
    with engine.connect() as c:
        sent = set(c.execute(text("SELECT recipient_id FROM outbox")).scalars())
    line = named[named["rpps"].isin(sent)].iloc[0]
    sign_in(client, "sophie")
    page = client.get(f"/officines/{line['finess']}")
    through = f'href="/officines/{line["finess"]}/emails/'
    links = sorted(set(part.split('"')[0] for part in page.text.split(through)[1:]))
    assert len(links) >= 2 and all(link.isdigit() for link in links)  # the officine's and its professional's
    bodies = [client.get(f"/officines/{line['finess']}/emails/{link}") for link in links]
    assert all(b.status_code == 200 and "Objet" in b.text for b in bodies)
    assert any(f"RPPS {line['rpps']}" in b.text or line["rpps"] in b.text for b in bodies)
    assert [a["target"] for a in actions(engine) if a["action"] == "message"] == [
        f"email {k} ({line['finess']})" for k in links]
    assert client.get(f"/officines/{line['finess']}/emails/999999").status_code == 404


def test_support_reaches_an_email_through_its_officine_not_by_counting_ids(client, engine, folder):
    with engine.connect() as c:
        mine, other = c.execute(text(
            "SELECT a.id, b.recipient_id FROM outbox a JOIN outbox b ON b.recipient_kind = 'officine' "
            "AND a.recipient_kind = 'officine' AND a.recipient_id != b.recipient_id LIMIT 1")).one()
    sign_in(client, "sophie")
    assert client.get(f"/emails/{mine}").status_code == 403  # the outbox's way is the operators'
    assert client.get(f"/officines/{other}/emails/{mine}").status_code == 404  # not that officine's email
    sign_in(client, "olivier")
    assert client.get(f"/emails/{mine}").status_code == 200


def test_support_sees_versions_reports_and_follow_pages(client):
    sign_in(client, "sophie")
    assert "Versions" in client.get(f"/sessions/{SESSION}").text
    report = client.get(f"/sessions/{SESSION}/versions/1/rapport")
    assert report.status_code == 200 and "<svg" in report.text and "script-src" not in report.headers["content-security-policy"]
    assert client.get(f"/sessions/{SESSION}/versions/1/suivi").status_code == 200


@pytest.mark.parametrize("name", ["sophie", "olivier", "adele"])
def test_each_role_opens_exactly_the_pages_of_its_role(client, name):
    sign_in(client, name)
    role = {"sophie": "support", "olivier": "operator", "adele": "admin"}[name]
    for path in PAGES:
        allowed = (path not in OPERATOR_PAGES or role != "support") and (path not in ADMIN_PAGES or role == "admin")
        assert client.get(path).status_code == (200 if allowed else 403), (name, path)


@pytest.mark.parametrize("path", OPERATOR_PAGES + ADMIN_PAGES)
def test_support_may_not_open_operator_or_admin_pages(client, path):
    sign_in(client, "sophie")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_an_operator_may_not_open_admin_pages(client, path):
    sign_in(client, "olivier")
    assert client.get(path).status_code == 403


def test_support_gets_403_for_a_reallocation_and_nothing_is_written(client, engine):
    sign_in(client, "sophie")
    before = runs_count(engine)
    for preview in (True, False):
        answer = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client),
                             json={"changes": CHANGES, "reason": "test", "preview": preview})
        assert answer.status_code == 403
    form = client.post(f"/sessions/{SESSION}/reallocation/apercu",
                       data={"csrftoken": client.cookies["csrftoken"], "effective": "2021-06-22"})
    assert form.status_code == 403 and runs_count(engine) == before


# Operators: CSRF, preview, reallocation.

@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "forged"}])
def test_a_reallocation_without_the_matching_csrf_token_is_refused(client, engine, headers):
    sign_in(client, "olivier")
    answer = client.post(f"/api/sessions/{SESSION}/reallocations", headers=headers,
                         json={"changes": CHANGES, "reason": "x", "preview": False})
    assert answer.status_code == 403 and runs_count(engine) == 1


def test_a_form_without_its_csrf_token_is_refused(client):
    sign_in(client, "olivier")
    assert client.post(f"/sessions/{SESSION}/reallocation/apercu", data={"effective": "2021-06-22"}).status_code == 403
    assert client.post("/logout").status_code == 403


def test_a_preview_answers_the_cli_s_preview_and_writes_only_its_audit_row(client, engine, folder, tmp_path):
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = 2021-06-22\nsupply = { moderna = 100 }\n')
    sign_in(client, "olivier")
    answer = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client),
                         json={"changes": CHANGES, "preview": True})
    done = vialflow("reallocate", SESSION, str(changes), "--out", str(folder), "--preview", "--json")
    assert answer.status_code == 200 and answer.json() == json.loads(done.stdout)
    assert answer.json()["lines"] and runs_count(engine) == 1
    assert [a["action"] for a in actions(engine)][-1] == "preview"


def test_a_reallocation_records_the_version_with_the_signed_in_operator_and_hands_it_to_the_workers(
        client, engine, workers):
    sign_in(client, "olivier")
    answer = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client),
                         json={"changes": CHANGES, "reason": "Livraison supplémentaire", "preview": False})
    assert answer.status_code == 200, answer.text
    with engine.connect() as c:
        run = c.execute(text("SELECT id, version, operator, reason FROM runs ORDER BY version DESC")).first()
    assert (run.version, run.operator, run.reason) == (2, "olivier", "Livraison supplémentaire")
    assert workers.handed == [run.id] and answer.json()["version"] == 2
    last = actions(engine)[-1]
    assert (last["actor"], last["action"], last["run_id"], last["address"]) == ("olivier", "reallocate", run.id,
                                                                               "testclient")


def test_the_composed_form_previews_then_confirms_a_reallocation(client, engine, workers):
    sign_in(client, "olivier")
    token = client.cookies["csrftoken"]
    shown = client.post(f"/sessions/{SESSION}/reallocation/apercu",
                        data={"csrftoken": token, "effective": "2021-06-22", "supply_moderna": "100"})
    assert shown.status_code == 200 and "Aperçu" in shown.text and runs_count(engine) == 1
    refused = client.post(f"/sessions/{SESSION}/reallocation/confirmer",
                          data={"csrftoken": token, "changes": json.dumps(CHANGES), "reason": " "})
    assert refused.status_code == 400 and "Un motif est obligatoire" in refused.text and runs_count(engine) == 1
    done = client.post(f"/sessions/{SESSION}/reallocation/confirmer",
                       data={"csrftoken": token, "changes": json.dumps(CHANGES), "reason": "Arrivage"})
    assert done.status_code == 303 and done.headers["location"] == f"/sessions/{SESSION}/versions/2/suivi"
    assert len(workers.handed) == 1
    assert "Arrivage" in client.get(f"/sessions/{SESSION}").text
    following = client.get(f"/sessions/{SESSION}/versions/2/suivi")  # the recording workers do nothing
    assert following.status_code == 200 and 'http-equiv="refresh"' in following.text and "settled" not in following.text
    assert client.get(f"/sessions/{SESSION}/versions/2/rapport").status_code == 409


def test_an_uploaded_changes_file_is_read_by_the_cli_s_reader(client):
    sign_in(client, "olivier")
    token = client.cookies["csrftoken"]
    good = client.post(f"/sessions/{SESSION}/reallocation/apercu", data={"csrftoken": token},
                       files={"fichier": ("changes.toml", b'effective = 2021-06-22\nsupply = { moderna = 100 }\n')})
    assert good.status_code == 200 and "Aperçu" in good.text
    bad = client.post(f"/sessions/{SESSION}/reallocation/apercu", data={"csrftoken": token},
                      files={"fichier": ("changes.toml", b'effective = "juin"\n[[[')})
    assert bad.status_code == 400 and "ne se lit pas" in bad.text


@pytest.mark.parametrize("changes,reason,said", [
    ({"effective": "2021-06-22", "cancel": ["A-NOPE"]}, "x", "Ligne inconnue"),
    ({"effective": "2021-06-22", "supply": {"moderna": -5}}, "x", "ne peut pas être négatif"),
    ({"effective": "2021-06-22", "supply": {"pfizer": 5}}, "x", "vaccin inconnu"),
    ({"supply": {"moderna": 5}}, "x", "date d'effet : manquant"),
    (CHANGES, "", "Un motif est obligatoire"),
    (CHANGES, "x", "« preview » vaut true ou false"),
])
def test_bad_reallocations_are_said_in_french_and_change_nothing(client, engine, workers, changes, reason, said):
    sign_in(client, "olivier")
    body = {"changes": changes, "reason": reason} | ({} if "preview" in said else {"preview": False})
    answer = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client), json=body)
    assert answer.status_code == 400 and said in answer.json()["error"], answer.text
    assert runs_count(engine) == 1 and workers.handed == []


def test_a_negative_supply_typed_in_the_form_is_refused_in_french(client, engine):
    sign_in(client, "olivier")
    answer = client.post(f"/sessions/{SESSION}/reallocation/apercu",
                         data={"csrftoken": client.cookies["csrftoken"], "effective": "2021-06-22",
                               "supply_moderna": "-10"})
    assert answer.status_code == 400 and "ne peut pas être négatif" in answer.text and runs_count(engine) == 1


def test_an_unknown_finess_or_order_is_said_in_french(client):
    sign_in(client, "sophie")
    assert "Aucune officine" in client.get("/api/officines/999999999").json()["error"]
    assert client.get("/api/officines/999999999").status_code == 404
    assert client.get("/officines/999999999").status_code == 404
    assert client.get("/officines/12345").status_code == 400
    answer = client.get("/api/orders/A-NOPE/explanation")
    assert answer.status_code == 404 and answer.json()["error"] == "Ligne inconnue : A-NOPE."
    assert "n'a pas de version 7" in html.unescape(client.get(f"/sessions/{SESSION}/versions/7/suivi").text)


def test_a_service_s_refusal_is_answered_by_its_class_its_status_and_its_french_sentence(client, engine):
    sign_in(client, "olivier")
    unknown = client.post("/api/sessions/nope/reallocations", headers=csrf(client),
                          json={"changes": CHANGES, "preview": True})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Session inconnue : nope."})
    page = client.get("/sessions/nope")
    assert page.status_code == 404 and "<h1>Session inconnue</h1>" in page.text
    assert "Session inconnue : nope." in html.unescape(page.text)
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    with engine.begin() as c:  # a version recorded, its steps not yet run
        c.execute(text("INSERT INTO runs (session_id, version, operator, reason, changes, input_hash, created_at) "
                       "VALUES (:s, 2, 'olivier', 'r', '{}', 'h2', :at)"), {"s": SESSION, "at": dt.datetime.now()})
    busy = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client),
                       json={"changes": CHANGES, "preview": True})
    assert busy.status_code == 409
    assert busy.json()["error"] == (f"Session {SESSION} : la version 2 est encore en cours ; réessayez quand elle "
                                    "sera terminée.")


# The outbox.

def test_an_operator_resends_a_failed_email_with_a_reason(client, engine, workers):
    with engine.begin() as c:
        outbox_id, run = c.execute(text("SELECT id, run_id FROM outbox ORDER BY id LIMIT 1")).one()
        c.execute(text("UPDATE outbox SET state = 'failed' WHERE id = :id"), {"id": outbox_id})
    sign_in(client, "olivier")
    page = client.get(f"/sessions/{SESSION}/emails?etat=failed")
    assert page.status_code == 200 and f'value="{outbox_id}"' in page.text
    token = client.cookies["csrftoken"]
    missing = client.post(f"/sessions/{SESSION}/emails/renvoi", data={"csrftoken": token, "ids": str(outbox_id)})
    assert missing.status_code == 400 and "Un motif est obligatoire" in missing.text
    done = client.post(f"/sessions/{SESSION}/emails/renvoi",
                       data={"csrftoken": token, "ids": str(outbox_id), "reason": "Adresse corrigée"})
    assert done.status_code == 200 and "1 email(s) remis" in done.text
    with engine.connect() as c:
        assert c.execute(text("SELECT state FROM outbox WHERE id = :id"), {"id": outbox_id}).scalar() == "pending"
    assert workers.sent_again == [run]
    assert [(a["action"], a["reason"]) for a in actions(engine) if a["action"] == "resend"] == \
        [("resend", "Adresse corrigée")]


# Admin and the audit log.

def test_every_look_up_and_explanation_is_audited_with_who_and_from_where_and_no_name(client, engine, folder):
    line = allocations(folder).iloc[0]
    sign_in(client, "sophie")
    client.get(f"/officines/{line['finess']}")
    client.get(f"/api/officines/{line['finess']}")
    client.get(f"/api/orders/{line['order_id']}/explanation")
    client.get(f"/lignes/{line['order_id']}/explication")
    rows = [a for a in actions(engine) if a["action"] in ("lookup", "explain")]
    assert [(a["actor"], a["action"], a["target"], a["address"]) for a in rows] == [
        ("sophie", "lookup", line["finess"], "testclient"), ("sophie", "lookup", line["finess"], "testclient"),
        ("sophie", "explain", line["order_id"], "testclient"), ("sophie", "explain", line["order_id"], "testclient")]
    assert all("@" not in str(a) for a in actions(engine))


def test_an_admin_reads_the_accounts_and_the_audit_log_and_nobody_edits_it(client):
    sign_in(client, "sophie")
    client.get("/officines/010023456")
    sign_in(client, "adele")
    accounts = client.get("/admin/comptes")
    assert accounts.status_code == 200 and "olivier" in accounts.text and "opérateur" in accounts.text
    journal = client.get("/admin/journal")
    assert journal.status_code == 200 and "lookup" in journal.text and "010023456" in journal.text
    for method in ("POST", "PUT", "DELETE"):
        assert client.request(method, "/admin/journal").status_code == 405


def test_users_add_reads_the_password_from_standard_input(folder):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "users", "add", "nadia", "--role",
                           "operator", "--out", str(folder)], input="a-long-enough-password\n", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "nadia" in done.stdout and "a-long-enough" not in done.stdout + done.stderr
    refused = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "users", "add", "nadia", "--role",
                              "pirate", "--out", str(folder)], input="a-long-enough-password\n", capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1


def test_the_form_composes_a_depot_day_closed_a_cancelled_line_and_a_redistribution(client, engine, folder):
    deliveries = pd.read_csv(folder / "deliveries.csv", dtype=str, keep_default_na=False)
    given = deliveries[(deliveries["status"] == "scheduled") & (deliveries["delivery_date"] <= "2021-06-18")].iloc[0]
    effective = (dt.date.fromisoformat(given["delivery_date"]) + dt.timedelta(days=7)).isoformat()
    refused = allocations(folder).query("status == 'refused'").iloc[0]["order_id"]
    with engine.connect() as c:
        rpps = c.execute(text("SELECT rpps FROM professionals ORDER BY rpps LIMIT 1")).scalar()
    sign_in(client, "olivier")
    answer = client.post(f"/sessions/{SESSION}/reallocation/apercu", data={
        "csrftoken": client.cookies["csrftoken"], "effective": effective, "depot_id": given["depot_id"],
        "depot_date": "2021-06-30", "depot_capacity": "0", "cancel": f" {refused} ",
        "redistribution_order": given["order_id"], "redistribution_vials": "1", "redistribution_rpps": rpps})
    assert answer.status_code == 200, answer.text
    changes = json.loads(html.unescape(answer.text.split('name="changes" value="')[1].split('"')[0]))
    assert changes["cancel"] == [refused] and changes["depot_days"][0]["capacity_vials"] == 0
    assert changes["redistribution"] == [{"order_id": given["order_id"], "vials": 1, "to_rpps": rpps}]
    audited = actions(engine)[-1]
    assert audited["action"] == "preview" and rpps not in json.dumps(audited["detail"]) and runs_count(engine) == 1


# Operators: verifying a version, and a policy previewed with its fairness figures.

def test_an_operator_verifies_a_version_and_the_verification_is_journaled(client, engine, folder):
    sign_in(client, "olivier")
    page = client.get(f"/sessions/{SESSION}")
    assert 'action="/sessions/2021-06-14/versions/1/verification"' in page.text
    done = client.post(f"/sessions/{SESSION}/versions/1/verification", data={"csrftoken": client.cookies["csrftoken"]})
    digest = json.loads((folder / "summary.json").read_text())["digest"]
    assert done.status_code == 200 and "Tout concorde" in done.text and digest in done.text
    audited = actions(engine)[-1]
    assert audited["action"] == "verify" and audited["session_id"] == SESSION
    assert json.loads(audited["detail"]) == {"version": 1, "agrees": True, "digest": digest}


def test_a_verification_finds_an_allocation_changed_by_hand_and_names_its_line(client, engine):
    with engine.begin() as c:
        order_id = c.execute(text("SELECT order_id FROM decisions WHERE allocated > 0 ORDER BY order_id LIMIT 1")).scalar()
        c.execute(text("UPDATE decisions SET allocated = allocated - 1 WHERE order_id = :o"), {"o": order_id})
    sign_in(client, "olivier")
    done = client.post(f"/sessions/{SESSION}/versions/1/verification", data={"csrftoken": client.cookies["csrftoken"]})
    assert done.status_code == 409 and "Écart trouvé" in done.text and order_id in done.text
    assert json.loads(actions(engine)[-1]["detail"])["agrees"] is False


def test_support_may_not_verify_and_a_verification_needs_its_csrf_token(client, engine):
    sign_in(client, "sophie")
    assert "/verification" not in client.get(f"/sessions/{SESSION}").text
    refused = client.post(f"/sessions/{SESSION}/versions/1/verification",
                          data={"csrftoken": client.cookies["csrftoken"]})
    assert refused.status_code == 403
    sign_in(client, "olivier")
    assert client.post(f"/sessions/{SESSION}/versions/1/verification", data={}).status_code == 403
    assert [a["action"] for a in actions(engine)].count("verify") == 0


def test_r7_a_policy_composed_in_the_form_is_previewed_with_the_fairness_figures_before_and_after(client, engine):
    sign_in(client, "olivier")
    token = client.cookies["csrftoken"]
    assert 'name="allocation_janssen"' in client.get(f"/sessions/{SESSION}/reallocation").text
    shown = client.post(f"/sessions/{SESSION}/reallocation/apercu",
                        data={"csrftoken": token, "effective": "2021-06-16", "supply_janssen": "80",
                              "allocation_janssen": "pro_rata", "remainders_moderna": "oui"})
    assert shown.status_code == 200 and 'id="fairness"' in shown.text and "Indice de Gini" in shown.text
    preview = client.post(f"/api/sessions/{SESSION}/reallocations", headers=csrf(client), json={
        "changes": {"effective": "2021-06-16", "supply": {"janssen": 80}, "allocation": {"janssen": "pro_rata"},
                    "remainders": {"moderna": True}}, "preview": True}).json()
    after = preview["fairness"]["janssen"]["after"]
    assert f"{after['fill_rate_min'] * 100:.1f} %".replace(".", ",") in html.unescape(shown.text)
    assert json.loads(shown.text.split('name="changes" value="')[1].split('"')[0].replace("&#34;", '"')) == {
        "effective": "2021-06-16", "supply": {"janssen": 80}, "cancel": [], "depot_days": [], "redistribution": [],
        "allocation": {"janssen": "pro_rata"}, "remainders": {"moderna": True}}
    assert runs_count(engine) == 1
