"""Each change has one place, read from the source: no private name used across modules, every task name
written once (in the step chain), queries in modules of one capability each, every value a bound
parameter, and a module over 300 lines saying why it is one piece."""

from __future__ import annotations

import ast

from pipeline.services import chain

from .test_layers import ROOT, modules

DATABASE = ROOT / "pipeline" / "adapters" / "db"


def _project_names(tree: ast.AST) -> set[str]:
    """The names a module binds to the project's modules (and what it imports from them)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in
                                                 ("pipeline", "workers", "schedules")):
            bound |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] in ("pipeline", "workers", "schedules")}
    return bound


def private_uses(source: str, name: str) -> list[str]:
    """`from x import _y`, or `x._y` on a module of the project: a name its module keeps for itself."""
    tree = ast.parse(source)
    found = [f"{name}: from {node.module} import {alias.name}" for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) for alias in node.names
             if alias.name.startswith("_") and not alias.name.startswith("__")]
    project = _project_names(tree)
    found += [f"{name}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in project
              and node.attr.startswith("_") and not node.attr.startswith("__")]
    return found


def test_no_module_uses_a_name_another_module_keeps_private():
    found = [use for name, path in modules().items() for use in private_uses(path.read_text(encoding="utf-8"), name)]
    assert found == []


def test_the_checker_sees_a_private_import_and_a_private_attribute():
    source = ("from pipeline.entrypoints.runner import _loopback_sink\n"
              "from pipeline import bootstrap\nbootstrap._current\n")
    assert private_uses(source, "m") == ["m: from pipeline.entrypoints.runner import _loopback_sink",
                                         "m: bootstrap._current"]


def test_every_task_name_is_written_once_outside_the_tests():
    names = {step.task for step in (*chain.RUN, chain.SEND)} | {chain.SEND_CHUNK, chain.TICK}
    written: dict[str, list[str]] = {name: [] for name in names}
    for folder in ("pipeline", "workers", "schedules", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in written:
                    written[node.value].append(str(path.relative_to(ROOT)))
    assert written == {name: ["pipeline/services/chain.py"] for name in names}


def test_the_workers_and_beat_register_one_task_per_declared_name_each_step_knowing_its_place():
    import schedules  # noqa: F401 - registers beat's tick
    import workers.tasks as tasks
    from pipeline.entrypoints.celery_app import app

    for step in chain.RUN:
        assert step.task in app.tasks
        if step is not chain.EXPORT:  # the export records no failure on the run: it is run again once emails settle
            assert app.tasks[step.task].step is step
    assert {chain.SEND.task, chain.SEND_CHUNK, chain.TICK} <= set(app.tasks)
    assert tasks.fan_out.name == chain.SEND.task and tasks.send_chunk.name == chain.SEND_CHUNK
    assert [chain.after(step) for step in chain.RUN] == [*chain.RUN[1:], None]


def test_no_module_of_the_database_adapter_is_over_400_lines_migrations_aside():
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in DATABASE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}
    assert {"sessions.py", "runs.py", "lines.py", "outbox.py", "metrics.py", "retention.py", "actions.py"} <= set(sizes)


def test_no_statement_is_compiled_with_its_values_written_into_it():
    for path in (ROOT / "pipeline").rglob("*.py"):
        assert "literal_binds" not in path.read_text(encoding="utf-8"), path


def test_a_module_over_300_lines_says_in_its_docstring_why_it_is_one_piece():
    long = {}
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 300 and "migrations" not in path.parts:
            long[name] = ast.get_docstring(ast.parse(text)) or ""
    assert long and {name: doc for name, doc in long.items() if "over 300 lines" not in doc} == {}
