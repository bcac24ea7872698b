"""The changes file of a reallocation (TOML), read into the domain's `Changes`."""

from __future__ import annotations

from pathlib import Path

from pipeline.adapters.files.scenario import read_toml
from pipeline.domain.changes import Changes


def read_changes(path: Path) -> Changes:
    """The changes of `path`; a missing, non-UTF-8 or invalid file is one ScenarioError line."""
    return read_toml(Path(path), Changes.model_validate)
