"""API keys: resolved from an explicit argument or the environment, never shown.

A :class:`Secret` hides its value from ``repr``/``str``; a :class:`Redactor` scrubs key strings
from any text (error messages, raw responses) before it is stored, logged or raised.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

#: Key sent to OpenAI-compatible local servers that need none (Ollama, vLLM without --api-key).
PLACEHOLDER_KEY = "not-needed"
_MASK = "***"


class MissingKeyError(RuntimeError):
    """No API key was found for a judge that needs one (raised before any work starts)."""


class Secret:
    """A string that never shows itself in ``repr``/``str``/f-strings. Use :meth:`reveal` to send it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "argument", an env var name, or "placeholder"

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value='{_MASK}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):  # refuse to be pickled into files
        raise TypeError("Secret values cannot be pickled")


def resolve_key(
    explicit: str | None,
    env_names: Sequence[str],
    *,
    judge: str,
    required: bool = True,
) -> Secret:
    """The key from ``explicit``, else the first set variable in ``env_names``.

    Raises :class:`MissingKeyError` (naming the variables, never a value) when ``required`` and
    none is set; otherwise falls back to :data:`PLACEHOLDER_KEY`.
    """
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit.strip():
            raise ValueError(f"api_key for judge {judge!r} must be a non-empty string")
        return Secret(explicit.strip(), "argument")
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return Secret(value, name)
    if required:
        names = " or ".join(env_names)
        raise MissingKeyError(
            f"judge {judge!r} needs an API key: set {names} in the environment "
            f"(or pass api_key=...). No request was sent."
        )
    return Secret(PLACEHOLDER_KEY, "placeholder")


class Redactor:
    """Replaces every known secret value in a text with ``***``."""

    def __init__(self, *secrets: Secret | str | None) -> None:
        values = {s.reveal() if isinstance(s, Secret) else s for s in secrets if s}
        # Placeholders are not secrets; very short strings would mangle ordinary text.
        self._values = sorted((v for v in values if v != PLACEHOLDER_KEY and len(v) >= 6), key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = text if isinstance(text, str) else str(text)
        for value in self._values:
            if value in out:
                out = out.replace(value, _MASK)
        return out

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} secret(s))"


def check_env_urls(names: Sequence[str]) -> None:
    """Refuse credentials in a base-URL environment variable the SDK would read (e.g. ``OPENAI_BASE_URL``):
    a URL shows up in logs, errors and progress output, so it must never carry a key."""
    from ...core.specs import check_url

    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            check_url(value, f"URL in ${name}")


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the judge's key from every record of the HTTP libraries."""

    LOGGERS = ("httpx", "httpcore", "openai", "google_genai", "urllib3")

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True

    def install(self) -> "RedactingFilter":
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)
