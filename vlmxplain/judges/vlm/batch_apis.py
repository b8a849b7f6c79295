"""The two batch transports behind :class:`~.batch.BatchJudge`.

- OpenAI (``openai-batch:``): the requests become a JSONL file of
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` lines, uploaded with
  ``files.create(purpose="batch")``; ``batches.create(input_file_id=..., metadata={"vlmxplain_nonce":
  ...})`` starts the job; ``batches.retrieve`` polls it; ``files.content`` downloads the output and
  error files (lines matched on ``custom_id``, never on order). The body is what
  ``chat.completions.parse(response_format=JudgeResponse)`` sends synchronously.
- Gemini (``gemini-batch:``): inline requests, ``batches.create(model=..., src=[{contents, config,
  metadata}], config={"display_name": ...})`` with the synchronous judge's contents and
  ``GenerateContentConfig``; ``batches.get`` polls; results are ``dest.inlined_responses`` (matched
  on their ``metadata``). Inline jobs are capped at 20 MB, so jobs are chunked by size too.

Both tag a job with the run's submission nonce (metadata / display name) and find it again by
listing jobs, so a process killed between creating a job and recording it adopts the job.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ...core.records import JudgeResponse
from .batch import (CANCELLED, COMPLETED, EXPIRED, FAILED, IN_FLIGHT, BatchAPI, JobStatus, Result, SubmitError,
                    read_lines)
from .core import CallError

#: How many of the provider's most recent jobs are searched for a nonce.
FIND_LIMIT = 2000

_OPENAI_STATES = {"completed": COMPLETED, "expired": EXPIRED, "failed": FAILED, "cancelled": CANCELLED}
_GEMINI_STATES = {"JOB_STATE_SUCCEEDED": COMPLETED, "JOB_STATE_PARTIALLY_SUCCEEDED": COMPLETED,
                  "JOB_STATE_EXPIRED": EXPIRED, "JOB_STATE_FAILED": FAILED, "JOB_STATE_CANCELLED": CANCELLED}


def _line_failure(error: Any, status: Any = None) -> str:
    """The reason a provider gives for one failed request (a dict, an object or a string)."""
    if isinstance(error, dict):
        inner = error.get("error", error)
        code = inner.get("code") or inner.get("type") if isinstance(inner, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
    else:
        code, message = getattr(error, "code", None), getattr(error, "message", None)
    what = f" (HTTP {status})" if status else ""
    detail = ": ".join(str(p) for p in (code, message) if p) or "no reason given"
    return f"batch request failed{what}: {str(detail)[:500]}"


class OpenAIBatchAPI(BatchAPI):
    max_bytes = 190_000_000  # OpenAI: 200 MB per input file

    def body(self, image: bytes, prompt: str) -> dict:
        """The chat-completions body of one request, as the synchronous judge sends it."""
        from openai.lib._parsing._completions import type_to_response_format_param

        j = self.judge
        return {"model": j.model, "messages": j.messages(image, prompt),
                "response_format": type_to_response_format_param(JudgeResponse), **j._request_kwargs()}

    def submit(self, nonce: str, path: Path) -> str:
        import openai

        upload = path.with_suffix(".openai.jsonl")
        with open(upload, "w", encoding="utf-8") as f:
            for cid, image, prompt in read_lines(path):
                f.write(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                                    "body": self.body(image, prompt)}) + "\n")
        try:
            try:
                file = self.client.files.create(file=upload, purpose="batch")
            except openai.OpenAIError as exc:  # no job exists without its file
                err = self.judge._classify(exc)
                raise SubmitError(self.judge._redact(err.reason()), created_maybe=False, fatal=err.fatal) from None
            try:
                batch = self.client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                                   completion_window=self.options.completion_window,
                                                   metadata={"vlmxplain_nonce": nonce})
            except openai.APIStatusError as exc:  # the provider answered: no job was created
                err = self.judge._classify(exc)
                raise SubmitError(self.judge._redact(err.reason()), created_maybe=False, fatal=err.fatal) from None
            except openai.OpenAIError as exc:  # the reply was lost: the job may exist
                raise SubmitError(self.judge._redact(self.judge._classify(exc).reason()), created_maybe=True) from None
        finally:
            upload.unlink(missing_ok=True)
        return batch.id

    def find(self, nonce: str) -> str | None:
        import openai

        try:
            for k, batch in enumerate(self.client.batches.list(limit=100)):
                if (batch.metadata or {}).get("vlmxplain_nonce") == nonce:
                    return batch.id
                if k >= FIND_LIMIT:
                    break
        except openai.OpenAIError as exc:
            raise self.judge._classify(exc) from None
        return None

    def status(self, job_id: str) -> JobStatus:
        import openai

        try:
            batch = self.client.batches.retrieve(job_id)
        except openai.OpenAIError as exc:
            raise self.judge._classify(exc) from None
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        error = "; ".join(str(getattr(e, "message", e)) for e in errors)[:1000]
        return JobStatus(_OPENAI_STATES.get(batch.status, IN_FLIGHT), str(batch.status), error, raw=batch)

    def results(self, status: JobStatus) -> Iterator[Result]:
        import openai

        batch = status.raw
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            try:
                text = self.client.files.content(file_id).text
            except openai.OpenAIError as exc:
                raise self.judge._classify(exc) from None
            for line in text.splitlines():
                if line.strip():
                    yield self._result(line)

    def _result(self, line: str) -> Result:
        try:
            obj = json.loads(line)
        except ValueError:
            return None, "unreadable result line"
        if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
            return None, "result line without a custom_id"
        cid, response = obj["custom_id"], obj.get("response") or {}
        if obj.get("error"):
            return cid, _line_failure(obj["error"])
        status, body = response.get("status_code"), response.get("body")
        if status != 200:
            return cid, _line_failure(body if isinstance(body, dict) else {"message": str(body)[:500]}, status)
        text = json.dumps(body)
        try:
            return cid, self.judge._reply(self.judge._construct(text), text)
        except CallError as err:
            return cid, err.reason()

    def cancel(self, job_id: str) -> None:
        import openai

        try:
            self.client.batches.cancel(job_id)
        except openai.OpenAIError as exc:
            raise self.judge._classify(exc) from None


class GeminiBatchAPI(BatchAPI):
    max_bytes = 19_000_000  # inline requests: 20 MB per job

    def submit(self, nonce: str, path: Path) -> str:
        from google.genai import errors, types

        from .gemini_backend import _transport_errors

        j = self.judge
        src = [types.InlinedRequest(contents=[types.Part.from_bytes(data=image, mime_type=j.mime_type), prompt],
                                    config=j.config(), metadata={"custom_id": cid})
               for cid, image, prompt in read_lines(path)]
        timeouts, transport = _transport_errors()
        try:
            job = self.client.batches.create(model=j.model, src=src, config={"display_name": self.display_name(nonce)})
        except errors.APIError as exc:
            status = int(exc.code or 0)
            raise SubmitError(j._redact(f"HTTP {status}: {exc.message or exc.status}")[:500], created_maybe=False,
                              fatal=status in (401, 403, 404)) from None
        except (*timeouts, *transport) as exc:
            raise SubmitError(f"connection error: {type(exc).__name__}", created_maybe=True) from None
        return str(job.name)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from google.genai import errors

        from .gemini_backend import _transport_errors

        timeouts, transport = _transport_errors()
        try:
            return fn(*args, **kwargs)
        except errors.APIError as exc:
            status = int(exc.code or 0)
            raise CallError("HTTP error", str(exc.message or exc.status)[:500], status=status or None,
                            retryable=status >= 500 or status == 429, fatal=status in (401, 403, 404)) from None
        except (*timeouts, *transport) as exc:
            raise CallError("connection error", type(exc).__name__, retryable=True) from None

    def find(self, nonce: str) -> str | None:
        name = self.display_name(nonce)
        jobs = self._call(self.client.batches.list, config={"page_size": 100})
        for k, job in enumerate(jobs):
            if job.display_name == name:
                return str(job.name)
            if k >= FIND_LIMIT:
                break
        return None

    def status(self, job_id: str) -> JobStatus:
        job = self._call(self.client.batches.get, name=job_id)
        state = str(getattr(job.state, "value", job.state) or "")
        error = str(getattr(job.error, "message", "") or "") if getattr(job, "error", None) else ""
        return JobStatus(_GEMINI_STATES.get(state, IN_FLIGHT), state, error[:1000], raw=job)

    def results(self, status: JobStatus) -> Iterator[Result]:
        dest = getattr(status.raw, "dest", None)
        for item in (getattr(dest, "inlined_responses", None) or []):
            cid = (item.metadata or {}).get("custom_id") if isinstance(item.metadata, dict) else None
            if not cid:
                yield None, "result without its custom_id"
            elif item.error is not None:
                yield cid, _line_failure(item.error)
            elif item.response is None:
                yield cid, "batch request failed: the result holds no response"
            else:
                yield cid, self.judge._reply(item.response)

    def cancel(self, job_id: str) -> None:
        self._call(self.client.batches.cancel, name=job_id)
