"""The console probed as an attacker would, through the real HTTP server (`vialflow console`, uvicorn
on loopback; other loopback addresses, 127.0.0.x, stand for other clients): sign-in throttling that
never locks the owner out, bounded password hashing, hostile inputs answered 4xx with every
security header, unexpected errors said in French with a reference and logged without personal
data, one report for three concurrent requests, and Pro Santé Connect sign-ins started without end
held per address and bounded in number."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import threading
import time

import httpx2 as httpx
import psutil
import pytest
from sqlalchemy import text

from pipeline.adapters.db import make_engine, migrate
from pipeline.adapters.db.tables import Base
from pipeline.entrypoints.console.security import HEADERS
from pipeline.services.accounts import add_user
from pipeline.services.self_service import PENDING_MOST, START_LIFE
from pipeline.services.throttle import START_LIMITS
from pipeline.settings import DATABASE_FILE

from ..oidc import launch
from .conftest import PASSWORDS, ROLES, serving

SESSION = "2021-06-14"
ORDER = "A-0544032"
NAMES = [name.decode() for name, _ in HEADERS]
MiB = 1024 * 1024


def _client(base: str, source: str = "127.0.0.1", **options) -> httpx.Client:
    """A client whose connections come from `source`, another address of the loopback network."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=source), follow_redirects=False,
                        timeout=120, **options)


def _sign_in(base: str, name: str, source: str = "127.0.0.1") -> httpx.Client:
    client = _client(base, source)
    assert client.post("/login", data={"username": name, "password": PASSWORDS[name]}).status_code == 303
    return client


@contextlib.contextmanager
def _signed_in(base: str, name: str, source: str = "127.0.0.1"):
    with contextlib.closing(_sign_in(base, name, source)) as client:
        yield client


def _armoured(answer: httpx.Response) -> bool:
    return all(name in answer.headers for name in NAMES) and answer.headers["cache-control"] == "no-store"


@pytest.fixture(scope="module")
def run_folder(fixture_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks") / "run"
    shutil.copytree(fixture_run, folder)
    engine = make_engine(f"sqlite:///{folder / DATABASE_FILE}")
    migrate(engine)
    now = dt.datetime.now(dt.timezone.utc)
    for name, role in ROLES.items():
        add_user(engine, name, role, PASSWORDS[name], now)
    yield folder, engine
    engine.dispose()


@pytest.fixture(scope="module")
def served(run_folder, tmp_path_factory):
    """The console with its default four password-check slots."""
    folder, engine = run_folder
    log = tmp_path_factory.mktemp("attacks-log") / "console.log"
    with serving(folder, log) as (base, child):
        yield base, child, engine, log


# Sign-in throttling (OWASP ASVS V2.2).

def test_after_five_wrong_passwords_from_one_address_the_right_one_from_another_address_signs_in(served):
    base, _, engine, _ = served
    attacker = _client(base, "127.0.0.3")
    for _ in range(5):
        refused = attacker.post("/login", data={"username": "adele", "password": "not-adele-at-all"})
        assert refused.status_code == 401 and "Identifiant ou mot de passe incorrect" in refused.text
    held = attacker.post("/login", data={"username": "adele", "password": PASSWORDS["adele"]})
    assert held.status_code == 429 and 1 <= int(held.headers["retry-after"]) <= 30 and _armoured(held)
    owner = _client(base, "127.0.0.4")
    assert owner.post("/login", data={"username": "adele", "password": PASSWORDS["adele"]}).status_code == 303
    with engine.connect() as c:
        rows = c.execute(text("SELECT actor, action, address FROM actions WHERE action LIKE 'sign_in%' "
                              "AND actor = 'adele' ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("adele", "sign_in_refused", "127.0.0.3")] * 5 + [
        ("adele", "sign_in_locked", "127.0.0.3"), ("adele", "sign_in", "127.0.0.4")]


def test_of_twenty_parallel_wrong_passwords_no_more_than_five_have_their_password_checked(run_folder, tmp_path):
    """Thirty-two slots, so that only the count bounds the checks: each attempt is counted under a
    row lock before its hash, and those past the fifth are refused at once."""
    folder, engine = run_folder
    add_user(engine, "nadia", "support", "nadia-long-password-xq", dt.datetime.now(dt.timezone.utc))
    with serving(folder, tmp_path / "console.log", "--sign-in-slots", "32") as (base, _):
        start, answers = threading.Barrier(20), []

        def attempt() -> None:
            with _client(base, "127.0.0.5") as client:
                start.wait()
                answers.append(client.post("/login", data={"username": "nadia", "password": "wrong-password-1"}))

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 20, statuses
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    with engine.connect() as c:
        checked = c.execute(text("SELECT count(*) FROM actions WHERE action = 'sign_in_refused' AND actor = 'nadia'"))
        assert checked.scalar() == statuses.count(401)


def test_a_flood_of_sign_ins_keeps_the_server_memory_bounded(served):
    """Sixty sign-ins at once from sixty addresses (no throttle in the way): at most four argon2id
    checks (64 MiB each) run at once, the others are refused at once with 503 and Retry-After."""
    base, child, _, _ = served
    process = psutil.Process(child.pid)
    with _client(base, "127.0.0.6") as warm:  # the first hash, the templates, the pool: the baseline
        warm.post("/login", data={"username": "sophie", "password": PASSWORDS["sophie"]})
    baseline, peak, sampling = process.memory_info().rss, [0], threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start, answers = threading.Barrier(60), []

    def attempt(n: int) -> None:
        with _client(base, f"127.0.1.{n + 10}") as client:
            start.wait()
            answers.append(client.post("/login", data={"username": f"flood{n}", "password": "some-guess-12345"}))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sampling.set()
    sampler.join()
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 503} and statuses.count(503) >= 1, statuses
    assert all(a.headers["retry-after"] == "1" and _armoured(a) for a in answers if a.status_code == 503)
    # Four checks at once is 256 MiB at most; sixty would be 3.75 GiB.
    assert peak[0] - baseline < 6 * 64 * MiB, (baseline // MiB, peak[0] // MiB)


# Hostile inputs (OWASP ASVS V13): each once a 500 outside the security headers.

HOSTILE = [
    ("POST", "/recherche", {"q": "ab\x00cd"}, 400),
    ("POST", "/recherche", {"q": "x" * 50_000}, 400),
    ("GET", "/emails/9223372036854775808", None, 404),
    ("GET", "/emails/99999999999999999999999", None, 404),
    ("GET", "/officines/010023456/emails/99999999999999999999999", None, 404),
    ("GET", f"/lignes/{ORDER}/explication?run=99999999999999999999", None, 400),
    ("GET", f"/lignes/{ORDER}/explication?run=%C2%B2", None, 400),
    ("GET", f"/api/orders/{ORDER}/explanation?run=%C2%B2", None, 400),
    ("GET", f"/api/orders/{ORDER}/explanation?run=9223372036854775808", None, 400),
    ("GET", "/api/officines/010023456?session=a%00b", None, 400),
    ("GET", f"/sessions/{SESSION}/versions/99999999999999999999/rapport", None, 404),
    ("GET", f"/sessions/{SESSION}?avant=1&apres=99999999999999999999", None, 400),
    ("GET", f"/sessions/{SESSION}/emails?page=%C2%B2", None, 400),
    ("GET", f"/sessions/{SESSION}/emails?etat=x%00", None, 400),
    ("GET", "/sessions/a%00b", None, 404),
    ("GET", "/officines/0100%0023456", None, 400),
    ("POST", f"/sessions/{SESSION}/emails/renvoi", {"reason": "r", "ids": "²"}, 400),
    ("API", f"/api/sessions/{SESSION}/reallocations", "[" * 5000 + "]" * 5000, 400),
    ("API", f"/api/sessions/{SESSION}/reallocations",
     json.dumps({"preview": True, "changes": {"effective": "2021-06-22", "cancel": ["1"] * 300_000}}), 400),
    ("API", f"/api/sessions/{SESSION}/reallocations",
     json.dumps({"preview": False, "reason": "a\x00b", "changes": {"effective": "2021-06-22"}}), 400),
    ("TOML", f"/sessions/{SESSION}/reallocation/apercu", "effective = 2021-06-22\nx = " + "[" * 5000 + "]" * 5000,
     400),
]


@pytest.mark.parametrize("method,path,data,status", HOSTILE, ids=[f"{m} {p[:60]}" for m, p, *_ in HOSTILE])
def test_each_hostile_input_is_refused_with_a_4xx_and_every_security_header(served, method, path, data, status):
    base, _, _, log = served
    with _signed_in(base, "olivier", "127.0.0.7") as client:
        token = client.cookies["csrftoken"]
        if method == "POST":
            answer = client.post(path, data={**data, "csrftoken": token})
        elif method == "API":
            answer = client.post(path, content=data.encode(), headers={"X-CSRF-Token": token,
                                                                       "Content-Type": "application/json"})
        elif method == "TOML":
            answer = client.post(path, data={"csrftoken": token}, files={"fichier": ("changes.toml", data.encode())})
        else:
            answer = client.get(path)
    assert answer.status_code == status and _armoured(answer), (answer.status_code, answer.text[:300])
    if path.startswith("/api/"):
        assert answer.headers["content-type"].startswith("application/json") and answer.json()["error"]
    else:
        assert answer.headers["content-type"].startswith("text/html") and 'lang="fr"' in answer.text
    assert "Traceback" not in log.read_text()


def _raw(base: str, request: str) -> str:
    """What the server answers first to `request` written as it is on a socket (its head, lower case)."""
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30) as raw:
        raw.sendall(request.encode())
        return raw.recv(65536).decode("latin-1").lower()


def test_a_fifty_megabyte_body_is_refused_before_it_is_read(served):
    base, _, _, _ = served
    with _signed_in(base, "olivier", "127.0.0.7") as client:
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        token = client.cookies["csrftoken"]
    head = _raw(base, f"POST /api/sessions/{SESSION}/reallocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {50 * 1000 * 1000}\r\n"
                      f"Cookie: {cookies}\r\nX-CSRF-Token: {token}\r\n\r\n{{\"changes\": ")
    assert head.startswith("http/1.1 413") and all(name in head for name in NAMES), head[:500]  # 50 MB unsent


def test_a_trailing_slash_is_redirected_by_a_relative_address_never_the_host_header(served):
    base, _, _, _ = served
    with _signed_in(base, "sophie", "127.0.0.8") as client:
        moved = client.get("/officines/010023456/", headers={"Host": "evil.example"})
        assert moved.status_code == 307 and moved.headers["location"] == "/officines/010023456" and _armoured(moved)
    folded = _raw(base, "GET //evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert folded.startswith("http/1.1 404") and "evil.example" not in folded.split("\r\n\r\n")[0]


def test_the_email_viewer_reads_an_email_whose_address_is_invalid_audits_it_and_never_logs_the_address(served):
    base, _, engine, log = served
    broken = "jeanne.martin at example"
    with engine.begin() as c:
        outbox_id, finess = c.execute(text("SELECT id, recipient_id FROM outbox WHERE recipient_kind = 'officine' "
                                           "ORDER BY id LIMIT 1")).one()
        c.execute(text("UPDATE outbox SET state = 'failed', detail = '501 bad address' WHERE id = :i"), {"i": outbox_id})
        c.execute(text("UPDATE pharmacies SET email = :e WHERE finess = :f"), {"e": broken, "f": finess})
    with _signed_in(base, "sophie", "127.0.0.9") as support:
        read = support.get(f"/officines/{finess}/emails/{outbox_id}")
    assert read.status_code == 200 and _armoured(read) and "adresse invalide" in read.text and "Objet" in read.text
    with _signed_in(base, "olivier", "127.0.0.9") as operator:
        assert operator.get(f"/emails/{outbox_id}").status_code == 200
    with engine.connect() as c:
        audited = c.execute(text("SELECT actor, target FROM actions WHERE action = 'message' ORDER BY id")).all()
    assert [tuple(a) for a in audited][-2:] == [("sophie", f"email {outbox_id} ({finess})"),
                                                 ("olivier", f"email {outbox_id}")]
    assert broken not in log.read_text()


def test_an_unexpected_error_is_a_french_page_with_a_reference_logged_without_personal_data(served):
    """A session whose stored rules no longer read (a hand-edited database): every page that needs
    them fails. The rules quote an address, which pydantic's message would repeat."""
    base, _, engine, log = served
    address = "marie.dupont@example.fr"
    with engine.begin() as c:
        kept = c.execute(text("SELECT rules FROM sessions WHERE id = :s"), {"s": SESSION}).scalar()
        c.execute(text("UPDATE sessions SET rules = :r WHERE id = :s"),
                  {"r": json.dumps({"contact": address}), "s": SESSION})
    try:
        with _signed_in(base, "sophie", "127.0.0.10") as client:
            page = client.get(f"/lignes/{ORDER}/explication")
            api = client.get(f"/api/orders/{ORDER}/explanation")
    finally:
        with engine.begin() as c:
            c.execute(text("UPDATE sessions SET rules = :r WHERE id = :s"), {"r": kept, "s": SESSION})
    assert page.status_code == 500 and _armoured(page) and "Une erreur inattendue" in page.text
    assert api.status_code == 500 and _armoured(api) and api.json()["reference"]
    reference = api.json()["reference"]
    written = log.read_text()
    assert f"console error {reference}" in written and "Traceback" not in written and address not in written
    assert "ValidationError" in written  # the exception's type and frames are there for whoever fixes it


# Reports (built once per run version, drawn one at a time).

def test_three_concurrent_requests_for_one_report_give_identical_bytes_stored_once(served):
    base, _, engine, _ = served
    with engine.begin() as c:
        c.execute(text("DELETE FROM run_reports"))
    clients = [_sign_in(base, "olivier", f"127.0.0.{n}") for n in (11, 12, 13)]
    start, bodies = threading.Barrier(3), {}

    def fetch(n: int) -> None:
        start.wait()
        bodies[n] = clients[n].get(f"/sessions/{SESSION}/versions/1/rapport")

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(b.status_code == 200 and "<svg" in b.text for b in bodies.values())
    assert bodies[0].content == bodies[1].content == bodies[2].content
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM run_reports")).scalar() == 1
    assert clients[0].get(f"/sessions/{SESSION}/versions/1/rapport").content == bodies[0].content
    for client in clients:
        client.close()


# Pro Santé Connect: each start stores a row (its state) before anyone is known.

@pytest.fixture(scope="module")
def served_with_provider(run_folder, tmp_path_factory):
    """The console signing in with a real OpenID provider on loopback."""
    folder, engine = run_folder
    clients = [{"client_id": "vialflow", "client_secret": "vialflow-test-secret-1",
                "redirect_uris": ["http://127.0.0.1/connexion/psc/retour"]}]
    with launch.provider(tmp_path_factory.mktemp("provider"), {}, clients) as issuer:
        env = {"VIALFLOW_OIDC_ISSUER": issuer, "VIALFLOW_OIDC_CLIENT_ID": "vialflow",
               "VIALFLOW_OIDC_CLIENT_SECRET": "vialflow-test-secret-1"}
        with serving(folder, tmp_path_factory.mktemp("psc-log") / "console.log", env=env) as (base, _):
            yield base, issuer, engine


def _pending(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM oidc_starts")).scalar()


def test_sign_ins_started_from_one_address_are_held_past_their_limit_and_another_address_is_not(
        served_with_provider):
    base, issuer, engine = served_with_provider
    free = START_LIMITS["psc_adr"].free
    before = _pending(engine)
    with _client(base, "127.0.0.31") as attacker:
        for _ in range(free):
            started = attacker.get("/connexion/psc")
            assert started.status_code == 303 and started.headers["location"].startswith(issuer)
        held = attacker.get("/connexion/psc")
        assert held.status_code == 429 and _armoured(held)
        assert held.headers["retry-after"] == str(int(START_LIMITS["psc_adr"].first_lock.total_seconds()))
        assert "Trop de connexions par Pro Santé Connect commencées depuis cette adresse" in held.text
        assert "réessayez dans 1 minute" in held.text
    assert _pending(engine) == before + free  # the held one stored nothing
    with _client(base, "127.0.0.32") as other:
        assert other.get("/connexion/psc").status_code == 303
    assert _pending(engine) == before + free + 1


def test_sign_ins_under_way_are_bounded_and_the_expired_ones_forgotten_as_a_new_one_starts(served_with_provider):
    base, issuer, engine = served_with_provider
    starts = Base.metadata.tables["oidc_starts"]
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as c:
        c.execute(starts.delete())
        c.execute(starts.insert(), [{"id": f"{n:064x}", "state": "s", "nonce": "n", "code_verifier": "v",
                                     "created_at": now} for n in range(PENDING_MOST)])
    try:
        with _client(base, "127.0.0.33") as client:
            full = client.get("/connexion/psc")
            assert full.status_code == 503 and _armoured(full)
            assert "Trop de connexions par Pro Santé Connect sont en cours" in full.text
            assert 0 < int(full.headers["retry-after"]) <= START_LIFE.total_seconds()
            assert _pending(engine) == PENDING_MOST
            with engine.begin() as c:  # all of them now older than a sign-in lives
                c.execute(starts.update().values(created_at=now - START_LIFE - dt.timedelta(seconds=5)))
            started = client.get("/connexion/psc")
            assert started.status_code == 303 and started.headers["location"].startswith(issuer)
        assert _pending(engine) == 1  # the expired ones went as the new one was stored
    finally:
        with engine.begin() as c:
            c.execute(starts.delete())
