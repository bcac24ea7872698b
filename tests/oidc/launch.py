"""Start the test OpenID provider (provider.mjs, on oidc-provider from npm) on loopback.

Its npm package is installed here on first use when node_modules is missing. Without node or npm the
tests that need it skip, saying so; under CI=true they fail instead."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _needs(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: the OpenID Connect tests need Node.js and npm (apt-get install nodejs npm)")
    pytest.skip(f"{what}: the OpenID Connect tests need Node.js and npm (apt-get install nodejs npm)")


def installed() -> None:
    """node and oidc-provider ready, or the test skipped (failed under CI)."""
    if not shutil.which("node") or not shutil.which("npm"):
        _needs("no node or npm on this machine")
    with (HERE / ".install.lock").open("w") as lock:  # the suite's processes install it once between them
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                _needs(f"npm install of tests/oidc failed: {done.stderr.strip()[-300:]}")


@contextlib.contextmanager
def provider(folder: Path, accounts: dict, clients: list[dict], port: int = 0, key_id: str = "test-key-1"):
    """The provider with these accounts (login_hint -> user info claims) and clients, on `port` (0: any
    free one), signing with a new key named `key_id`; yields its issuer."""
    installed()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accounts.json").write_text(json.dumps(accounts))
    (folder / "clients.json").write_text(json.dumps(clients))
    with (folder / "provider.log").open("w") as log:
        child = subprocess.Popen(["node", str(HERE / "provider.mjs"), str(folder / "accounts.json"),
                                  str(folder / "clients.json"), str(port), key_id], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=log, text=True)
        try:
            issuer = child.stdout.readline().strip()
            assert issuer.startswith("http://127.0.0.1:"), (folder / "provider.log").read_text()
            yield issuer
        finally:
            child.stdin.close()
            child.wait(timeout=30)
