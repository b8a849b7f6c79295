"""OpenAI and OpenAI-compatible judges (Chat Completions over the official ``openai`` SDK).

- ``openai:<model>`` — structured outputs: ``client.chat.completions.parse(...,
  response_format=JudgeResponse)``. The paper used ``gpt-4o-mini`` (reported to leave the API in
  January 2027); the model is a setting. Key: ``api_key=`` or ``OPENAI_API_KEY``; base URL:
  ``base_url=`` or ``OPENAI_BASE_URL`` (proxies and gateways work without code changes).
- ``openai-compatible:<model>@<base_url>`` — local servers (vLLM, Ollama, llama.cpp, LM Studio):
  plain ``create`` with a ``json_schema`` response_format, validated with pydantic, tolerant
  parser as fallback for servers that ignore the schema. Key: ``api_key=``, else the variable
  named by ``api_key_env``, else ``OPENAI_COMPATIBLE_API_KEY``, else a placeholder (local servers
  usually need none). ``OPENAI_API_KEY`` is deliberately *not* used, so an OpenAI key is never
  sent to a third-party server.

The SDK's own retries are off (``max_retries=0``); :mod:`.limits` owns retry and backoff.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from ...core.records import JudgeResponse
from .core import CallError, Reply, VLMJudge
from .keys import Secret, resolve_key
from .limits import FATAL_STATUS, RETRYABLE_STATUS, parse_retry_after, status_kind
from .prompts import judge_response_schema

class OpenAIJudge(VLMJudge):
    """Judge via OpenAI Chat Completions with structured outputs (``openai:<model>``)."""

    provider = "openai"
    allowed_details = ("low", "high", "auto")
    base_url_env = ("OPENAI_BASE_URL",)
    default_url = "https://api.openai.com/v1"
    structured_outputs = True  # chat.completions.parse with the pydantic model

    def _resolve_key(self, explicit: str | None) -> Secret:
        return resolve_key(explicit, ("OPENAI_API_KEY",), judge=self.id)

    def _base_url(self) -> str | None:
        return self.options.base_url  # None: the SDK reads OPENAI_BASE_URL

    def _make_client(self, key: Secret) -> Any:
        import openai

        kwargs: dict[str, Any] = dict(api_key=key.reveal(), timeout=self.options.timeout, max_retries=0)
        if self._base_url():
            kwargs["base_url"] = self._base_url()
        return openai.OpenAI(**kwargs)

    def messages(self, image: bytes, prompt: str) -> list[dict]:
        """The chat messages for one request (system rubric, user text + data-URL image)."""
        url: dict[str, Any] = {"url": f"data:{self.mime_type};base64," + base64.b64encode(image).decode("ascii")}
        if self.detail:
            url["detail"] = self.detail
        return [
            {"role": "system", "content": self.template.system},
            {"role": "user", "content": [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": url}]},
        ]

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.options.temperature is not None:
            kwargs["temperature"] = self.options.temperature
        if self.options.max_output_tokens:
            kwargs["max_completion_tokens"] = self.options.max_output_tokens
        return kwargs

    def _send(self, image: bytes, prompt: str) -> Reply:
        import openai
        import pydantic

        messages = self.messages(image, prompt)
        try:
            raw = self._client.chat.completions.with_raw_response.parse(
                model=self.model, messages=messages, response_format=JudgeResponse, **self._request_kwargs())
        except openai.OpenAIError as exc:
            raise self._classify(exc) from None
        body = raw.text
        try:
            completion = raw.parse()
        except openai.LengthFinishReasonError as exc:
            return self._reply(exc.completion, body)
        except (openai.ContentFilterFinishReasonError, pydantic.ValidationError, ValueError, AttributeError):
            # Content-filter finish, or content that is not schema-valid JSON (a proxy or server
            # that ignored the schema): read the completion as-is; the tolerant parser decides.
            return self._reply(self._construct(body), body)
        return self._reply(completion, body)

    @staticmethod
    def _construct(body: str) -> Any:
        from openai.types.chat import ChatCompletion

        try:
            data = json.loads(body)
        except ValueError as exc:
            raise CallError("invalid response", f"response body is not JSON ({exc.msg})", retryable=True) from None
        if not isinstance(data, dict):
            raise CallError("invalid response", "response body is not a JSON object", retryable=True)
        return ChatCompletion.construct(**data)

    def _reply(self, completion: Any, body: str) -> Reply:
        usage = getattr(completion, "usage", None)
        tokens = dict(input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                      output_tokens=int(getattr(usage, "completion_tokens", 0) or 0))
        choices = getattr(completion, "choices", None) or []
        if not choices:
            return Reply(None, finish="empty", detail="the response has no choices", body=body, **tokens)
        choice = choices[0]
        message = choice.message
        text = getattr(message, "content", None)
        refusal = getattr(message, "refusal", None)
        if refusal:
            return Reply(text, finish="refusal", detail=str(refusal), body=body, **tokens)
        finish = getattr(choice, "finish_reason", None)
        if finish == "length":
            return Reply(text, finish="length", detail="finish_reason=length", body=body, **tokens)
        if finish == "content_filter":
            return Reply(text, finish="blocked", detail="finish_reason=content_filter", body=body, **tokens)
        parsed = getattr(message, "parsed", None)
        return Reply(text, parsed=parsed if isinstance(parsed, JudgeResponse) else None, body=body, **tokens)

    def _classify(self, exc: Exception) -> CallError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return CallError("timeout", f"no response within {self.options.timeout:g} s", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f"{type(cause).__name__}" if cause else str(exc)
            return CallError("connection error", f"{exc.message} ({detail})", retryable=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            body = exc.body
            message = exc.message
            if isinstance(body, dict):
                err = body.get("error", body)
                if isinstance(err, dict) and err.get("message"):
                    message = str(err["message"])
            return CallError(status_kind(status), message[:500], status=status, retryable=status in RETRYABLE_STATUS,
                             fatal=status in FATAL_STATUS, retry_after=parse_retry_after(exc.response.headers))
        return CallError("client error", f"{type(exc).__name__}: {exc}")


class OpenAICompatibleJudge(OpenAIJudge):
    """Judge via any OpenAI-compatible server (``openai-compatible:<model>@<base_url>``):
    vLLM, Ollama, llama.cpp ``llama-server``, LM Studio. Pin ``temperature`` (Ollama defaults to 1)."""

    provider = "openai-compatible"
    allowed_details = ("low", "high", "auto")

    def _resolve_key(self, explicit: str | None) -> Secret:
        env = (self.options.api_key_env,) if self.options.api_key_env else ("OPENAI_COMPATIBLE_API_KEY",)
        return resolve_key(explicit, env, judge=self.id, required=bool(self.options.api_key_env))

    def _base_url(self) -> str | None:
        return self.options.base_url or self.spec.base_url

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.options.temperature is not None:
            kwargs["temperature"] = self.options.temperature
        if self.options.max_output_tokens:
            kwargs["max_tokens"] = self.options.max_output_tokens  # widest server support
        if self.options.structured:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "JudgeResponse", "schema": judge_response_schema(strict=True), "strict": True}}
        return kwargs

    def _send(self, image: bytes, prompt: str) -> Reply:
        import openai

        try:
            raw = self._client.chat.completions.with_raw_response.create(
                model=self.model, messages=self.messages(image, prompt), **self._request_kwargs())
        except openai.OpenAIError as exc:
            raise self._classify(exc) from None
        body = raw.text
        try:
            completion = raw.parse()
        except ValueError:
            completion = self._construct(body)
        if isinstance(completion, str):  # a server that answered with a non-JSON content type
            completion = self._construct(body)
        return self._reply(completion, body)
