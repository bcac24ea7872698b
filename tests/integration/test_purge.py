"""`vialflow purge` on PostgreSQL: no register name or address left in any text column of any table,
while lookup and explain answer the same volumes and dates."""

from __future__ import annotations

import pytest

from ..conftest import FIXTURE, vialflow
from ..purging import personal_values_stored
from ..test_purge import answers

pytestmark = pytest.mark.integration


def test_purge_on_postgresql_blanks_every_name_and_address_and_keeps_the_answers(database_url, tmp_path):
    done = vialflow("run", str(FIXTURE), "--out", str(tmp_path / "out"), "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert personal_values_stored(database_url, FIXTURE)
    before = answers("--database-url", database_url)
    done = vialflow("purge", "2021-06-14", "--database-url", database_url, "--keep-days", "0",
                    "--operator", "DPO", "--reason", "durée de conservation atteinte")
    assert done.returncode == 0, done.stderr
    assert personal_values_stored(database_url, FIXTURE) == []
    assert answers("--database-url", database_url) == before
