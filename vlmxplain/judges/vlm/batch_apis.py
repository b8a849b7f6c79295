"""The two batch transports behind :class:`~.batch.BatchJudge`.

- OpenAI (``openai-batch:``): the requests become a JSONL file of
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` lines, uploaded with
  ``files.create(purpose="batch")``; ``batches.create(input_file_id=..., metadata={"vlmxplain_nonce":
  ...})`` starts the job; ``batches.retrieve`` polls it; ``files.content`` downloads the output and
  error files (lines matched on ``custom_id``, never on order). The body is what
  ``chat.completions.parse(response_format=JudgeResponse)`` sends synchronously.
- Gemini (``gemini-batch:``): ``batches.create(model=..., src=..., config={"display_name": ...})``
  with the synchronous judge's contents and ``GenerateContentConfig``, either inline (``src`` a list
  of ``InlinedRequest`` with a ``custom_id`` in their ``metadata``; 20 MB per job; results in
  ``dest.inlined_responses``) or, when a job does not fit (``gemini_input``), as a JSONL file of
  ``{"key", "request"}`` lines — the SDK's own REST form of the same request — uploaded with
  ``files.upload`` (2 GB; results downloaded from ``dest.file_name``). ``batches.get`` polls. A
  finished job's uploaded input is deleted (``release``).

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

    def release(self, status: JobStatus) -> None:
        """Delete a finished job's input file (the output files stay: they are the results)."""
        import openai

        file_id = getattr(status.raw, "input_file_id", None)
        if file_id:
            try:
                self.client.files.delete(file_id)
            except openai.OpenAIError:  # deleted already: nothing is lost either way
                pass

    def cancel(self, job_id: str) -> None:
        import openai

        try:
            self.client.batches.cancel(job_id)
        except openai.OpenAIError as exc:
            raise self.judge._classify(exc) from None


class GeminiBatchAPI(BatchAPI):
    inline_bytes = 19_000_000  # inline requests: 20 MB per job
    file_bytes = 1_900_000_000  # an input file: 2 GB

    @property
    def max_bytes(self) -> int:  # type: ignore[override]
        return self.inline_bytes if self.options.gemini_input == "inline" else self.file_bytes

    def _requests(self, path: Path) -> Iterator[Any]:
        """The synchronous judge's contents and config for each neutral line, as inline requests."""
        from google.genai import types

        j = self.judge
        config = j.config()  # the same for every request of the job
        for cid, image, prompt in read_lines(path):
            yield types.InlinedRequest(contents=[types.Part.from_bytes(data=image, mime_type=j.mime_type), prompt],
                                       config=config, metadata={"custom_id": cid})

    def submit(self, nonce: str, path: Path) -> str:
        from google.genai import errors

        from .gemini_backend import _transport_errors

        j, mode = self.judge, self.options.gemini_input
        as_file = mode == "file" or (mode == "auto" and path.stat().st_size > self.inline_bytes)
        src = self._upload(nonce, path) if as_file else list(self._requests(path))
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

    @staticmethod
    def input_file(nonce: str) -> str:
        """The name of a job's uploaded input file (Files API names: ≤ 40 lowercase characters)."""
        return f"files/vlmx-{nonce[:32]}"

    def _upload(self, nonce: str, path: Path) -> str:
        """Write the requests as Gemini's ``{"key", "request"}`` JSONL lines (the SDK's own REST form of
        the synchronous request) and upload them with the Files API; the file's name. No job exists
        without its file, so a failed upload is never a job to look up."""
        from google.genai import _common, batches, errors

        from .gemini_backend import _transport_errors

        api_client = self.client._api_client
        upload = path.with_suffix(".gemini.jsonl")
        timeouts, transport = _transport_errors()
        try:
            with open(upload, "w", encoding="utf-8") as f:
                for request in self._requests(path):
                    rest = _common.encode_unserializable_types(
                        _common.convert_to_dict(batches._InlinedRequest_to_mldev(api_client, request)))
                    f.write(json.dumps({"key": request.metadata["custom_id"], "request": rest["request"]}) + "\n")
            file = self.client.files.upload(file=upload, config={"name": self.input_file(nonce), "mime_type": "jsonl",
                                                                 "display_name": self.display_name(nonce)})
        except errors.APIError as exc:
            status = int(exc.code or 0)
            raise SubmitError(self.judge._redact(f"upload: HTTP {status}: {exc.message or exc.status}")[:500],
                              created_maybe=False, fatal=status in (401, 403)) from None
        except (*timeouts, *transport, KeyError, ValueError) as exc:  # no upload URL, or not finalized
            raise SubmitError(f"upload: {type(exc).__name__}: {self.judge._redact(exc)[:300]}", created_maybe=False) from None
        finally:
            upload.unlink(missing_ok=True)
        return str(file.name)

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
        if getattr(dest, "file_name", None):
            yield from self._file_results(str(dest.file_name))
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

    def _file_results(self, name: str) -> Iterator[Result]:
        """The ``{"key", "response" | "error" | "status"}`` lines of a job's results file."""
        from google.genai import batches, types

        data = self._call(self.client.files.download, file=name)
        for line in data.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                yield None, "unreadable result line"
                continue
            cid = obj.get("key") if isinstance(obj, dict) else None
            if not isinstance(cid, str):
                yield None, "result line without its key"
            elif obj.get("error") or obj.get("status"):
                yield cid, _line_failure(obj.get("error") or obj["status"])
            elif not isinstance(obj.get("response"), dict):
                yield cid, "batch request failed: the result holds no response"
            else:
                try:
                    response = types.GenerateContentResponse._from_response(
                        response=batches._GenerateContentResponse_from_mldev(obj["response"]), kwargs={})
                except ValueError as exc:  # pydantic's ValidationError too
                    yield cid, f"invalid response: {type(exc).__name__}"
                    continue
                yield cid, self.judge._reply(response)

    def release(self, status: JobStatus) -> None:
        """Delete a finished job's uploaded input file (Gemini keeps files 48 h, within a 20 GB quota)."""
        name, prefix = str(getattr(status.raw, "display_name", "") or ""), self.display_name("")
        if getattr(getattr(status.raw, "dest", None), "file_name", None) and name.startswith(prefix):  # a file job
            try:
                self._call(self.client.files.delete, name=self.input_file(name[len(prefix):]))
            except CallError:  # deleted already, or not ours to delete: it expires on its own
                pass

    def cancel(self, job_id: str) -> None:
        self._call(self.client.batches.cancel, name=job_id)
