"""`vialflow` as a user runs it, inside the test's process: the same `main()`, its exit status and
what it printed, without paying an interpreter's start for each of the many drawn runs."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from unittest import mock


@dataclass
class Done:
    code: int
    out: str
    err: str


def vialflow(*args: str, env: dict[str, str] | None = None) -> Done:
    """`vialflow ARGS` with none of this environment's VIALFLOW_ settings but `env`'s."""
    from pipeline.entrypoints.cli import main

    out, err = io.StringIO(), io.StringIO()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")} | (env or {})
    with mock.patch.object(sys, "argv", ["vialflow", *args]), mock.patch.dict(os.environ, clean, clear=True), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return Done(code, out.getvalue(), err.getvalue())
