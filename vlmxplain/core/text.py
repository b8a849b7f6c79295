"""Untrusted text (what a VLM or a file name says) made safe to store, show and export.

* :func:`clean_text` drops what can disguise or corrupt text: ANSI escape sequences, C0/C1
  control characters (newline and tab stay), bidirectional overrides and isolates, zero-width
  characters and the byte-order mark, lone surrogates;
* :func:`cap_text` bounds a text's length (a judgment records that it was cut);
* :func:`csv_cell` / :func:`csv_safe` keep spreadsheet programs from running a cell as a
  formula (CSV injection: a text starting with ``= + - @``, tab or carriage return).

HTML escaping is separate (``html.escape`` where text meets markup); this module makes text
plain, it does not make it markup-safe.
"""
from __future__ import annotations

import re
from typing import Any

#: Longest description / justification kept per judgment (characters); longer ones are cut.
TEXT_LIMIT = 20_000
#: Longest raw response kept per judgment (characters).
RAW_LIMIT = 100_000

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 (not \t \n) and C1 controls; \r is dropped too
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb"  # zero-width, bidi, BOM
    "\ud800-\udfff]"  # lone surrogates (cannot be encoded)
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean_text(text: Any) -> str:
    """``text`` as plain, printable text (see the module doc); ``\\r\\n`` becomes ``\\n``."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if not s.isprintable():
        s = _UNSAFE.sub("", _ANSI.sub("", s.replace("\r\n", "\n")))
    return s


def cap_text(text: str, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """(``text`` cut to ``limit`` characters with a marker, whether it was cut)."""
    if len(text) <= limit:
        return text, False
    marker = f" […cut: {len(text) - limit:,} more characters]"
    return text[:limit] + marker, True


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet shows as text, never evaluates (``'`` prefixed); other values as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: Any) -> Any:
    """A copy of a pandas frame whose text cells are :func:`csv_cell`-safe (lists/dicts as text)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    out = frame.copy()
    for col in out.columns:
        if not (is_numeric_dtype(out[col].dtype) or is_bool_dtype(out[col].dtype)):
            out[col] = out[col].map(lambda v: csv_cell(v) if isinstance(v, str) else v)
    return out
