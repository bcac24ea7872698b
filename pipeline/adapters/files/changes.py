"""The changes file of a reallocation (TOML), read into the domain's `Changes`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from pipeline.adapters.files.scenario import ScenarioError, describe
from pipeline.domain.changes import Changes


def read_changes(path: Path) -> Changes:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{Path(path).name}: missing file (expected at {path})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{Path(path).name}: not valid TOML ({error})") from None
    try:
        return Changes.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{Path(path).name}: {describe(error)}") from None
