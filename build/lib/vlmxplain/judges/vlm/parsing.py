"""Turn a VLM's text answer into a validated :class:`JudgeResponse`.

The strict path validates the whole text as JSON against the schema (``parse_path="structured"``).
If a server ignored the schema, the tolerant path recovers the first JSON object that validates
from fenced (```json ... ```) or chatty text (``parse_path="tolerant"``). Anything else is a
:class:`ParseFailure` whose message says why (missing fields, score out of range, no JSON,
truncated JSON) — a score is never guessed.
"""
from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from ...core.records import JudgeResponse, ParsePath

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class ParseFailure(ValueError):
    """The text holds no valid judgment; ``str(exc)`` is the reason."""


def describe_validation_error(exc: ValidationError) -> str:
    """A short, value-free reason: 'missing fields: justification; score out of range (must be 0-5)'."""
    missing, problems = [], []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "response"
        kind = err.get("type", "")
        if kind == "missing":
            missing.append(field)
        elif kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
            problems.append(f"{field} out of range (must be 0-5)")
        elif kind == "model_type":
            problems.append("expected a JSON object")
        elif kind == "json_invalid":
            problems.append("invalid JSON")
        else:
            problems.append(f"{field}: {err.get('msg', kind)}")
    parts = ([f"missing fields: {', '.join(missing)}"] if missing else []) + problems
    return "; ".join(parts) or "schema violation"


def validate_response(data: Any) -> JudgeResponse:
    """Validate a decoded object against the schema (raises :class:`ParseFailure`)."""
    if not isinstance(data, dict):
        raise ParseFailure(f"schema violation: expected a JSON object, got {type(data).__name__}")
    try:
        return JudgeResponse.model_validate(data)
    except ValidationError as exc:
        raise ParseFailure(f"schema violation: {describe_validation_error(exc)}") from None


def _json_objects(text: str):
    """Every top-level JSON object embedded in ``text``, in order (fenced blocks first)."""
    chunks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in chunks:
        pos = chunk.find("{")
        while pos != -1:
            try:
                obj, end = _DECODER.raw_decode(chunk, pos)
            except json.JSONDecodeError:
                pos = chunk.find("{", pos + 1)
                continue
            yield obj
            pos = chunk.find("{", end)


def parse_judge_text(text: str | None) -> tuple[JudgeResponse, ParsePath]:
    """Parse a VLM answer; returns ``(response, "structured" | "tolerant")`` or raises :class:`ParseFailure`."""
    if text is None or not text.strip():
        raise ParseFailure("empty response: no text")
    try:
        return JudgeResponse.model_validate_json(text.strip()), "structured"
    except ValidationError as exc:
        strict_reason = describe_validation_error(exc)
        strict_was_json = not any(e.get("type") == "json_invalid" for e in exc.errors())
    first_reason: str | None = None
    for obj in _json_objects(text):
        try:
            return validate_response(obj), "tolerant"
        except ParseFailure as failure:
            first_reason = first_reason or str(failure)
    if strict_was_json:
        raise ParseFailure(f"schema violation: {strict_reason}")
    if first_reason:
        raise ParseFailure(first_reason)
    if "{" in text:
        raise ParseFailure("unparseable: JSON object is incomplete (truncated?)")
    raise ParseFailure("unparseable: no JSON object in the response")
