"""Gemini judge (``gemini:<model>``) over the official ``google-genai`` SDK.

``client.models.generate_content(model=..., contents=[Part.from_bytes(image, mime_type), prompt],
config=GenerateContentConfig(response_mime_type="application/json", response_json_schema=...,
temperature=...))``. The paper used ``gemini-1.5-flash`` (shut down); ``gemini-2.5-flash`` is a
current choice — the model is a setting.

Key: ``api_key=``, else ``GOOGLE_API_KEY``, else ``GEMINI_API_KEY`` (the SDK's own order). Base
URL: ``base_url=`` or ``GOOGLE_GEMINI_BASE_URL``; API version: ``api_version=`` or
``GOOGLE_GENAI_API_VERSION`` (SDK default ``v1``). ``detail`` maps to ``media_resolution``
(``low``/``medium``/``high``). The SDK's retries are off (one attempt); :mod:`.limits` owns retries.
"""
from __future__ import annotations

import json
from typing import Any

from .core import CallError, Reply, VLMJudge
from .keys import Secret, resolve_key
from .limits import FATAL_STATUS, RETRYABLE_STATUS, parse_retry_after, status_kind
from .prompts import judge_response_schema

_BLOCKED = {"SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "OTHER"}


def _transport_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(timeout classes, other transport classes) of the HTTP libraries google-genai may use."""
    timeouts: list[type] = []
    transport: list[type] = []
    for name in ("httpx", "httpx2"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        transport.append(mod.TransportError)
    return tuple(timeouts), tuple(transport)


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


class GeminiJudge(VLMJudge):
    """Judge via the Gemini API (``gemini:<model>``), JSON output constrained by the answer schema."""

    base_url_env = ("GOOGLE_GEMINI_BASE_URL",)
    default_url = "https://generativelanguage.googleapis.com"
    provider = "gemini"
    allowed_details = (None, "low", "medium", "high")

    def _resolve_key(self, explicit: str | None) -> Secret:
        return resolve_key(explicit, ("GOOGLE_API_KEY", "GEMINI_API_KEY"), judge=self.id)

    def _make_client(self, key: Secret) -> Any:
        from google import genai
        from google.genai import types

        http: dict[str, Any] = dict(timeout=int(round(self.options.timeout * 1000)),  # milliseconds
                                    retry_options=types.HttpRetryOptions(attempts=1))
        if self.options.base_url:
            http["base_url"] = self.options.base_url
        if self.options.api_version:
            http["api_version"] = self.options.api_version
        return genai.Client(api_key=key.reveal(), http_options=types.HttpOptions(**http))

    def config(self) -> Any:
        """The ``GenerateContentConfig`` sent with every request."""
        from google.genai import types

        kwargs: dict[str, Any] = dict(system_instruction=self.template.system, response_mime_type="application/json",
                                      response_json_schema=judge_response_schema())
        if self.options.temperature is not None:
            kwargs["temperature"] = self.options.temperature
        if self.options.max_output_tokens:
            kwargs["max_output_tokens"] = self.options.max_output_tokens
        if self.detail:
            kwargs["media_resolution"] = f"MEDIA_RESOLUTION_{self.detail.upper()}"
        return types.GenerateContentConfig(**kwargs)

    def _send(self, image: bytes, prompt: str) -> Reply:
        from google.genai import errors, types

        timeouts, transport = _transport_errors()
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=[types.Part.from_bytes(data=image, mime_type=self.mime_type), prompt],
                config=self.config())
        except errors.APIError as exc:
            status = int(exc.code or 0)
            headers = getattr(getattr(exc, "response", None), "headers", None)
            message = str(exc.message or exc.status or exc)[:500]
            raise CallError(status_kind(status), message, status=status or None,
                            retryable=status in RETRYABLE_STATUS, fatal=status in FATAL_STATUS,
                            retry_after=parse_retry_after(headers)) from None
        except timeouts:
            raise CallError("timeout", f"no response within {self.options.timeout:g} s", retryable=True) from None
        except transport as exc:
            raise CallError("connection error", type(exc).__name__, retryable=True) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CallError("invalid response", f"response body is not JSON ({type(exc).__name__})",
                            retryable=True) from None
        return self._reply(response)

    @staticmethod
    def _reply(response: Any) -> Reply:
        usage = response.usage_metadata
        tokens = dict(input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
                      output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0)
                      + int(getattr(usage, "thoughts_token_count", 0) or 0))
        body = response.model_dump_json(exclude_none=True, exclude={"sdk_http_response"})
        if not response.candidates:
            feedback = response.prompt_feedback
            reason = _enum_name(getattr(feedback, "block_reason", None)) if feedback else ""
            if reason:
                return Reply(None, finish="blocked", detail=f"prompt blocked ({reason})", body=body, **tokens)
            return Reply(None, finish="empty", detail="the response has no candidates", body=body, **tokens)
        candidate = response.candidates[0]
        parts = (candidate.content.parts if candidate.content else None) or []
        text = "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
        finish = _enum_name(candidate.finish_reason)
        if finish == "MAX_TOKENS":
            return Reply(text, finish="length", detail="finish_reason=MAX_TOKENS", body=body, **tokens)
        if finish in _BLOCKED:
            message = getattr(candidate, "finish_message", None)
            detail = f"finish_reason={finish}" + (f" ({message})" if message else "")
            return Reply(text, finish="blocked", detail=detail, body=body, **tokens)
        if not text:
            detail = f"no text (finish_reason={finish or 'none'})"
            return Reply(None, finish="empty", detail=detail, body=body, **tokens)
        return Reply(text, body=body, **tokens)
