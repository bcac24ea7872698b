"""Generated whole runs: sessions drawn from the whole space of inputs go through the real embedded
pipeline (`vialflow run`: a SQLite file, the in-process Celery worker, the loopback SMTP server),
then through a drawn reallocation, and every file, email and view is checked.

The test command draws SHAPES_EXAMPLES sessions (`python -m bench shapes --seconds N` soaks for
longer); each failure found stays below in `regressions/` as a small scenario folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from .checks import check_run
from .reallocations import changes_for, write_changes
from .run import vialflow
from .scenarios import Shape, dump, load, shapes, write
from .views import check_views

REGRESSIONS = Path(__file__).parent / "regressions"
EXAMPLES = int(os.environ.get("SHAPES_EXAMPLES", "12"))
# In CI the same draws every time, not shrunk (a landing must not hang on luck, nor on a shrink of
# minutes: the draw is reproduced and shrunk elsewhere); elsewhere new draws at each run.
CI = bool(os.environ.get("CI"))
WHOLE_RUNS = settings(max_examples=EXAMPLES, deadline=None, derandomize=CI, database=None if CI else settings().database,
                      suppress_health_check=list(HealthCheck), print_blob=True,
                      phases=[Phase.explicit, Phase.generate] if CI else list(Phase))


def run_whole(shape: Shape, data, folder: Path) -> None:
    """`vialflow run` on the drawn session, every check, then a drawn reallocation and every check
    again. A failing draw is kept in $SHAPES_FAILURES/latest (hypothesis replays the smallest last)."""
    scenario = write(shape, folder / "scenario")
    try:
        check_whole(shape, scenario, folder / "out", lambda first: changes_for(data, shape, first))
    except BaseException as error:
        if os.environ.get("SHAPES_FAILURES") and not isinstance(error, KeyboardInterrupt):
            keep(shape, scenario, Path(os.environ["SHAPES_FAILURES"]) / "latest", error)
        raise


def keep(shape: Shape, scenario: Path, folder: Path, error: BaseException) -> None:
    """A failing scenario as a regression folder: its files, shape.json for the checks, the error."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(scenario, folder)
    if (scenario.parent / "changes.toml").exists():
        shutil.copyfile(scenario.parent / "changes.toml", folder / "changes.toml")
    (folder / "shape.json").write_text(dump(shape), encoding="utf-8")
    (folder / "error.txt").write_text(f"{type(error).__name__}: {error}"[:20_000], encoding="utf-8")


def check_whole(shape: Shape, scenario: Path, out: Path, reallocation) -> None:
    """`vialflow run` of `scenario` with every check, then the reallocation `reallocation(first run)`
    gives (None: none), refused in one line or checked as the run was."""
    done = vialflow("run", str(scenario), "--out", str(out))
    # A run that went well says nothing on stderr: no warning of a library, no log line.
    assert done.code == 0 and not done.err.strip(), f"vialflow run: {done.err}\n{shape.describe()}"
    first = check_run(shape, out, 1)
    check_views(shape, out, 1)
    check_verify(shape, out, 1)
    changes = reallocation(first)
    if changes is None:
        return
    done = vialflow("reallocate", shape.session_id, str(write_changes(changes, scenario.parent / "changes.toml")),
                    "--operator", "Opératrice", "--reason", "stock revu", "--out", str(out))
    if done.code != 0:  # a change that does not fit what has left the depots: refused in one line, nothing written
        assert done.code == 1 and len(done.err.strip().splitlines()) == 1 and "Traceback" not in done.err, done.err
        assert not (out / "runs" / "2").exists()
        return
    assert not done.err.strip(), done.err
    check_run(shape, out, 2, changes, before=first | {"redistributed": []})
    check_views(shape, out, 2)
    check_verify(shape, out, 1)
    check_verify(shape, out, 2)


def check_verify(shape: Shape, out: Path, version: int) -> None:
    """`vialflow verify` derives the version again and finds it as stored, emails and files too."""
    done = vialflow("verify", shape.session_id, "--run", str(version), "--out", str(out))
    digest = json.loads((out / "runs" / str(version) / "summary.json").read_text(encoding="utf-8"))["digest"]
    assert done.code == 0 and not done.err.strip(), f"vialflow verify: {done.out}{done.err}\n{shape.describe()}"
    assert len(done.out.splitlines()) == 1 and f"version {version} {digest}" in done.out, done.out


@WHOLE_RUNS
@given(shape=shapes(), data=st.data())
def test_every_drawn_session_runs_to_the_end_with_every_file_right(shape, data):
    with tempfile.TemporaryDirectory(prefix="shape-") as folder:
        run_whole(shape, data, Path(folder))


@pytest.mark.parametrize("name", sorted(p.name for p in REGRESSIONS.iterdir() if (p / "shape.json").exists()))
def test_each_scenario_the_generator_found_failing_now_runs_to_the_end(name, tmp_path):
    """The draws that once failed, kept small (README.md of the folder says what each found)."""
    folder = REGRESSIONS / name
    shape = load((folder / "shape.json").read_text(encoding="utf-8"))
    scenario = shutil.copytree(folder, tmp_path / "scenario")
    changes = tomllib.loads((folder / "changes.toml").read_text(encoding="utf-8")) \
        if (folder / "changes.toml").exists() else None
    check_whole(shape, scenario, tmp_path / "out", lambda first: changes and {
        "supply": {}, "cancel": [], "depot_days": [], "redistribution": []} | changes)
