"""What a written file may not do: land outside its folder, or start a formula in the spreadsheet of the
person who opens it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import pandas as pd

# OWASP "CSV Injection": a cell starting with one of these is read as a formula by Excel, LibreOffice
# and Google Sheets (tab and carriage return because some of them skip those before the formula).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Text = TypeVar("Text", str, pd.Series)


class UnsafePath(ValueError):
    """A file name taken from data (a depot id, an email header) that would leave its folder."""


def inside(folder: Path, *parts: str) -> Path:
    """`folder/parts...`, resolved (symlinks followed), strictly below `folder`, or UnsafePath.

    Parts come from data, so each must be non-empty, relative and free of NUL bytes; `..` and symlinks
    are then judged by where the whole path resolves, not by how it is spelled."""
    if not parts:
        raise UnsafePath(f"no file named inside {folder}")
    for part in parts:
        text = os.fspath(part) if isinstance(part, (str, os.PathLike)) else None
        if not isinstance(text, str) or not text or "\0" in text or Path(text).is_absolute():
            raise UnsafePath(f"{part!r} is not a relative file name (inside {folder})")
    root = Path(folder).resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or not path.is_relative_to(root):
        raise UnsafePath(f"{'/'.join(parts)!r} leads outside {root}")
    return path


def spreadsheet_text(value: Text) -> Text:
    """A text starting like a formula gets a leading apostrophe, which spreadsheets show as plain text.

    For a Series, only its str values change (numbers and missing values are left as they are) and
    a new Series is returned; a Series of another dtype comes back as a copy."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    out = value.copy()
    if not (pd.api.types.is_object_dtype(value.dtype) or pd.api.types.is_string_dtype(value.dtype)):
        return out
    risky = value.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES)).astype(bool)
    if risky.any():
        out[risky] = "'" + value[risky]
    return out
