"""Accounts without the server: the throttle's arithmetic, the password rules, and the `vialflow users`
commands (piped, as a script runs them) with their rows in the journal."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from pipeline.services.accounts import add_user, sign_in
from pipeline.services.passwords import WeakPassword, check_password
from pipeline.services.throttle import keys_for, reserve, unknown

NOW = dt.datetime(2021, 6, 14, 9, 0, tzinfo=dt.timezone.utc)


def rows(keys, **values):
    blank = {"failures": 0, "last_at": None, "locked_until": None, "known_at": None}
    return {key: SimpleNamespace(**{**blank, **values.get(key[0], {})}) for key in keys}


def apply(found: dict, attempt) -> dict:
    for key, values in attempt.updates.items():
        found[key] = SimpleNamespace(**{**vars(found[key]), **values})
    return found


def test_five_tries_are_free_then_each_refusal_doubles_the_wait_up_to_fifteen_minutes():
    keys, now, waits = keys_for("sophie", "10.0.0.1"), NOW, []
    found = rows(keys)
    for _ in range(12):
        attempt = reserve(found, now)
        assert attempt.retry_after is None
        found = apply(found, attempt)
        waits.append(dict(attempt.locks).get("pair"))
        refused = reserve(found, now + dt.timedelta(seconds=1))
        assert (refused.retry_after is not None) == (waits[-1] is not None)
        now += dt.timedelta(seconds=(waits[-1] or 0) + 1)
    assert waits == [None] * 4 + [30, 60, 120, 240, 480, 900, 900, 900]


def test_a_key_quiet_for_the_window_after_its_lock_starts_again_from_zero():
    keys = keys_for("sophie", "10.0.0.1")
    found = rows(keys, pair={"failures": 9, "last_at": NOW, "locked_until": NOW + dt.timedelta(minutes=15)})
    assert reserve(found, NOW + dt.timedelta(minutes=29)).locks  # 14 minutes after the lock: it goes on
    assert not reserve(found, NOW + dt.timedelta(minutes=31)).locks  # 16 minutes after: a first try again


def test_the_account_key_never_holds_back_an_address_the_owner_signed_in_from():
    keys = keys_for("sophie", "10.0.0.1")
    locked = {"failures": 100, "last_at": NOW, "locked_until": NOW + dt.timedelta(minutes=15)}
    assert reserve(rows(keys, account=locked), NOW).retry_after is not None
    owner = rows(keys, account=locked, pair={"known_at": NOW - dt.timedelta(days=3)})
    assert reserve(owner, NOW).retry_after is None and ("account", "sophie", "") not in reserve(owner, NOW).updates


def test_a_name_that_is_no_account_is_counted_like_one_under_a_digest_not_as_typed():
    keys = keys_for(unknown("hunter2-typed-here"), "10.0.0.1")
    assert [k[0] for k in keys] == ["pair", "address", "account"] and len(keys[0][1]) == 25
    assert "hunter2" not in str(keys) and keys[0][1].startswith("?") and unknown("a") != unknown("b")


def test_an_unknown_name_and_an_account_meet_the_same_hold_so_none_tells_which_names_exist(engine):
    for name in ("olivier", "nobody-here"):
        for _ in range(5):
            with pytest.raises(Exception, match="incorrect"):
                sign_in(engine, name, "not-the-password", "10.3.3.3", NOW)
        with pytest.raises(Exception, match="Trop de tentatives"):
            sign_in(engine, name, "not-the-password", "10.3.3.3", NOW)


@pytest.mark.parametrize("password,said", [
    ("short-one", "au moins 12"), ("a" * 12, "répété"), (" " * 12, "répété"), ("password1234", "trop courant"),
    ("azertyuiop123", "trop courant"), ("sophie-sophie-1", "trop courant"), ("x" * 129, "au plus 128")])
def test_short_repeated_common_or_guessable_passwords_are_refused_in_french(password, said):
    with pytest.raises(WeakPassword, match=said):
        check_password(password, "sophie")


def test_a_long_passphrase_is_accepted():
    check_password("gravier lune tram 1987 piano", "sophie")


def test_a_disabled_account_cannot_sign_in_and_a_refused_sign_in_is_journaled(engine):
    with pytest.raises(Exception, match="Identifiant ou mot de passe incorrect"):
        sign_in(engine, "olivier", "not-the-password", "10.1.1.1", NOW)
    with engine.connect() as c:
        assert c.execute(text("SELECT actor, action, address FROM actions WHERE action = 'sign_in_refused'")).all() \
            == [("olivier", "sign_in_refused", "10.1.1.1")]


def users(folder, *args: str, typed: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "users", *args, "--out", str(folder)],
                          input=typed, capture_output=True, text=True, timeout=120)


def test_users_commands_read_a_piped_password_end_sessions_and_write_the_journal(folder, engine):
    assert users(folder, "add", "nadia", "--role", "support", typed="nadia-first-password-9\n").returncode == 0
    signed = sign_in(engine, "nadia", "nadia-first-password-9", "10.2.2.2", NOW)
    weak = users(folder, "password", "nadia", typed="password1234\n")
    assert weak.returncode == 1 and weak.stderr.count("\n") == 1 and "trop courant" in weak.stderr
    assert users(folder, "password", "nadia", typed="nadia-second-password-7\n").returncode == 0
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM console_sessions WHERE id = :d"),
                         {"d": __import__("hashlib").sha256(signed.token.encode()).hexdigest()}).scalar() == 0
    assert users(folder, "disable", "nadia").returncode == 0
    with pytest.raises(Exception, match="incorrect"):
        sign_in(engine, "nadia", "nadia-second-password-7", "10.2.2.2", NOW)
    assert users(folder, "enable", "nadia").returncode == 0
    assert users(folder, "unlock", "nadia").returncode == 0
    assert sign_in(engine, "nadia", "nadia-second-password-7", "10.2.2.2", NOW).name == "nadia"
    unknown = users(folder, "disable", "nobody")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    with engine.connect() as c:
        done = c.execute(text("SELECT action, target FROM actions WHERE action LIKE 'user_%' AND target = 'nadia' ORDER BY id")).all()
    assert [tuple(d) for d in done] == [("user_add", "nadia"), ("user_password", "nadia"), ("user_disable", "nadia"),
                                        ("user_enable", "nadia"), ("user_unlock", "nadia")]
    assert not any("password-" in str(d) for d in done)


def test_add_user_refuses_a_weak_password(engine):
    with pytest.raises(WeakPassword):
        add_user(engine, "yann", "support", "aaaaaaaaaaaaaaaa", NOW)
