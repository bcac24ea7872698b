"""`vialflow purge`: a settled session past its retention keeps no register name or address anywhere
in its database, while lookup, explain and runs answer the same volumes and dates; recorded with who
and why; a session whose emails have not all settled is refused."""

from __future__ import annotations

import json
import shutil

from sqlalchemy import create_engine, text

from pipeline.adapters.db import actions, make_engine
from pipeline.settings import DATABASE_FILE

from .conftest import FIXTURE, vialflow
from .purging import names_and_addresses, personal_values_stored, volumes_and_dates

OFFICINES, ORDERS = ("690012345", "690045678"), ("A-0859436", "A-9399182")


def answers(*where: str) -> dict:
    found = {}
    for finess in OFFICINES:
        done = vialflow("lookup", finess, *where, "--json")
        assert done.returncode == 0, done.stderr
        found[finess] = volumes_and_dates(json.loads(done.stdout))
    for order in ORDERS:
        done = vialflow("explain", order, *where, "--json")
        assert done.returncode == 0, done.stderr
        found[order] = json.loads(done.stdout)
    done = vialflow("runs", "2021-06-14", *where, "--json")
    assert done.returncode == 0, done.stderr
    found["runs"] = json.loads(done.stdout)
    return found


def test_purge_leaves_no_register_name_or_address_in_the_database_and_the_same_answers(fixture_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    url = f"sqlite:///{folder / DATABASE_FILE}"
    assert personal_values_stored(url, FIXTURE)  # the search finds them before
    assert list((folder / "mail").glob("2021-06-14-r1-*.eml"))
    before = answers("--out", str(folder))

    done = vialflow("purge", "2021-06-14", "--out", str(folder), "--keep-days", "0", "--operator", "DPO",
                    "--reason", "durée de conservation atteinte")
    assert done.returncode == 0, done.stderr

    assert personal_values_stored(url, FIXTURE) == []
    assert not list((folder / "mail").glob("2021-06-14-*.eml"))
    assert answers("--out", str(folder)) == before
    with make_engine(url).connect() as c:
        purge = actions.actions(c, action="purge")
    assert purge["actor"].tolist() == ["DPO"] and purge["reason"].tolist() == ["durée de conservation atteinte"]
    assert not any(value in json.dumps(purge["detail"].tolist()) for value in names_and_addresses(FIXTURE))


def test_purge_refuses_a_session_within_its_retention(fixture_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    done = vialflow("purge", "2021-06-14", "--out", str(folder), "--keep-days", "30", "--operator", "DPO",
                    "--reason", "test")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "est conservée jusqu'au" in done.stderr
    assert personal_values_stored(f"sqlite:///{folder / DATABASE_FILE}", FIXTURE)


def test_purge_refuses_a_session_whose_emails_have_not_all_settled(fixture_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    engine = create_engine(f"sqlite:///{folder / DATABASE_FILE}")
    with engine.begin() as c:
        c.execute(text("UPDATE outbox SET state = 'retry' WHERE id = (SELECT min(id) FROM outbox)"))
    engine.dispose()
    done = vialflow("purge", "2021-06-14", "--out", str(folder), "--keep-days", "0", "--operator", "DPO",
                    "--reason", "test")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "a 1 email(s) pas encore traité(s)" in done.stderr
    assert personal_values_stored(f"sqlite:///{folder / DATABASE_FILE}", FIXTURE)


def test_purge_needs_an_operator_and_a_reason(fixture_run, tmp_path):
    done = vialflow("purge", "2021-06-14", "--out", str(fixture_run), "--keep-days", "0")
    assert done.returncode == 1 and "(--operator)" in done.stderr and done.stderr.count("\n") == 1


def test_purge_cuts_names_and_addresses_out_of_a_stored_failure_message(fixture_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    engine = create_engine(f"sqlite:///{folder / DATABASE_FILE}")
    with engine.begin() as c:
        c.execute(text("UPDATE runs SET error = 'ValueError: invalid email address "
                       "''officine.690012345@pharma.example.fr'' for Pharmacie de la Gare Morel'"))
    engine.dispose()
    done = vialflow("purge", "2021-06-14", "--out", str(folder), "--keep-days", "0", "--operator", "DPO",
                    "--reason", "test")
    assert done.returncode == 0, done.stderr
    assert personal_values_stored(f"sqlite:///{folder / DATABASE_FILE}", FIXTURE) == []
