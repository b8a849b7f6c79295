"""The batch endpoints of the loopback server (tests/loopback_server.py): OpenAI Files + Batches and
Gemini batch jobs with inline requests, as the real ``openai`` / ``google-genai`` SDKs call them.

OpenAI: ``POST /v1/files`` (multipart), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches/{id}``, ``GET /v1/batches`` (list, newest first, ``after`` cursor),
``POST /v1/batches/{id}/cancel``. Gemini: ``POST /{v}/models/{m}:batchGenerateContent`` (inline
requests, or ``inputConfig.fileName`` of an uploaded JSONL file), ``GET /{v}/batches/{id}``,
``GET /{v}/batches`` (list), ``POST /{v}/batches/{id}:cancel``; the Files API's resumable upload
(``POST /upload/{v}/files`` with ``X-Goog-Upload-Command: start`` answers an upload URL, whose
``upload``/``upload, finalize`` chunks answer ``X-Goog-Upload-Status``), ``GET
/{v}/files/{id}:download?alt=media`` and ``DELETE /{v}/files/{id}``. A file job's results are a
JSONL file of ``{"key", "response"}`` / ``{"key", "error"}`` lines (``output.responsesFile``).

A test controls how jobs progress (``server.batch``)::

    server.batch.outcome = "completed"    # what a job becomes when polled (None: stays in progress)
    server.batch.plan = ["expired"]        # outcomes of the next new jobs, in order, then ``outcome``
    server.batch.polls_to_finish = 1       # polls that still see it in progress
    server.batch.answered_before_expiry = 2  # an expired job's partial output
    server.batch.malformed = 1             # the last output lines of a job are unreadable
    server.batch.create_hold = 5.0         # a creation's reply is held (the job exists already)
    server.batch.upload_hold = 5.0         # an upload's reply is held (no file, no job yet)
    server.batch.finish(outcome="completed")  # finish every job in progress now

Each request line's answer is the synchronous server's (same rules and faults: a rule with fault
``500``/``400``/... becomes a per-request error in the error file / an inline error). Every line
of every created job is recorded in ``server.batch.lines`` (count submissions server-side).
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

_STATUS = {"completed": "completed", "expired": "expired", "failed": "failed", "cancelled": "cancelled"}
_GSTATE = {"completed": "BATCH_STATE_SUCCEEDED", "expired": "BATCH_STATE_EXPIRED", "failed": "BATCH_STATE_FAILED",
           "cancelled": "BATCH_STATE_CANCELLED"}
_ERRORS = ("400", "401", "403", "404", "429", "500", "503")
_G_CREATE = re.compile(r"^/(?P<v>[^/]+)/models/(?P<model>[^/:]+):batchGenerateContent$")
_G_JOB = re.compile(r"^/(?P<v>[^/]+)/batches/(?P<id>[^/:]+)(?P<cancel>:cancel)?$")
_G_LIST = re.compile(r"^/(?P<v>[^/]+)/batches$")
_G_UPLOAD = re.compile(r"^/upload/(?P<v>[^/]+)/files$")
_G_FILE = re.compile(r"^/(?P<v>[^/]+)/files/(?P<id>[^/:]+)(?P<download>:download)?$")


@dataclass
class BatchLine:
    protocol: str  # "openai" or "gemini"
    job_id: str
    custom_id: str
    text: str
    images: list[bytes]
    body: dict


class BatchState:
    """Jobs, files and the knobs a test turns (see the module docstring)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.files: dict[str, dict] = {}  # OpenAI file id / Gemini file name -> bytes, purpose, ...
        self.deleted: dict[str, dict] = {}  # files the client deleted (kept here for the tests)
        self._uploads: dict[str, dict] = {}  # Gemini resumable uploads in progress
        self.jobs: dict[str, dict] = {}
        self.lines: list[BatchLine] = []
        self.calls: list[tuple[str, str, str | None]] = []  # (method, path, api key) of every batch call
        # but an upload's chunks (their upload URL is their credential)
        self.outcome: str | None = "completed"
        self.plan: list[str | None] = []
        self.polls_to_finish = 0
        self.answered_before_expiry = 0
        self.malformed = 0
        self.create_hold = 0.0
        self.upload_hold = 0.0
        self.created = threading.Event()  # set when a job exists (before a held reply is sent)
        self.uploading = threading.Event()  # set when an upload arrived (before a held reply, no file kept)
        self.release = threading.Event()  # ends a create_hold early
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    # -- control -------------------------------------------------------------------------------
    def finish(self, outcome: str = "completed", job_id: str | None = None) -> None:
        with self._lock:
            for jid, job in self.jobs.items():
                if (job_id is None or jid == job_id) and not job["_done"]:
                    self._finish(job, outcome)

    def custom_ids(self) -> list[str]:
        return [line.custom_id for line in self.lines]

    # -- routing -------------------------------------------------------------------------------
    def handle(self, h: Any, method: str, raw: bytes = b"") -> bool:
        """Answer a batch call on handler ``h``; False if the path is not a batch endpoint."""
        path, _, query = h.path.partition("?")
        q = {k: v[0] for k, v in parse_qs(query).items()}
        key = h.headers.get("authorization", "")
        key = key[7:] if key.lower().startswith("bearer ") else h.headers.get("x-goog-api-key")
        route = self._route(method, path, gemini=h.headers.get("x-goog-api-key") is not None, query=q)
        if route is None:
            return False
        chunk = route[0] == "_g_upload_chunk"  # authorised by its upload id, as at Google
        if not chunk:
            self.calls.append((method, path, key))
        if not chunk and self.owner.required_key is not None and key != self.owner.required_key:
            h._send(401, {"error": {"code": 401, "message": "Incorrect API key provided", "status": "UNAUTHENTICATED"}})
            return True
        name, args = route
        status, payload, raw_out, *headers = getattr(self, name)(h, q, raw, **args)
        if raw_out is not None:
            h._send(status, None, raw=raw_out, content_type="application/octet-stream")
        else:
            h._send(status, payload, headers[0] if headers else None)
        return True

    def _route(self, method: str, path: str, gemini: bool, query: dict) -> tuple[str, dict] | None:
        if method == "POST" and _G_UPLOAD.match(path):
            return ("_g_upload_chunk" if "upload_id" in query else "_g_upload_start"), {}
        if gemini and (m := _G_FILE.match(path)):
            if method == "DELETE":
                return "_g_delete", {"name": f"files/{m.group('id')}"}
            if method == "GET" and m.group("download"):
                return "_g_download", {"name": f"files/{m.group('id')}"}
            return None
        if gemini:  # the same /v1 paths as OpenAI's: told apart by the SDK's auth header
            if method == "POST" and (m := _G_CREATE.match(path)):
                return "_g_create", {"model": m.group("model")}
            if m := _G_JOB.match(path):
                return ("_g_cancel" if m.group("cancel") else "_g_get"), {"jid": m.group("id")}
            if method == "GET" and _G_LIST.match(path):
                return "_g_list", {}
            return None
        if method == "POST" and path == "/v1/files":
            return "_upload", {}
        if method == "DELETE" and (m := re.match(r"^/v1/files/([^/]+)$", path)):
            return "_o_delete", {"fid": m.group(1)}
        if method == "GET" and (m := re.match(r"^/v1/files/([^/]+)/content$", path)):
            return "_content", {"fid": m.group(1)}
        if path == "/v1/batches":
            return ("_o_create" if method == "POST" else "_o_list"), {}
        if m := re.match(r"^/v1/batches/([^/]+)(/cancel)?$", path):
            return ("_o_cancel" if m.group(2) else "_o_get"), {"jid": m.group(1)}
        return None

    # -- OpenAI ----------------------------------------------------------------------------------
    def _upload(self, h: Any, q: dict, raw: bytes) -> tuple:
        if self.upload_hold:  # the client dies waiting: the upload never completes
            self.uploading.set()
            self.release.wait(self.upload_hold)
            return 500, {"error": {"message": "upload interrupted"}}, None
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + h.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        data = parts["file"].get_payload(decode=True)
        fid = self._new_id("file-")
        self.files[fid] = {"bytes": data, "purpose": parts["purpose"].get_payload(decode=True).decode(),
                           "filename": parts["file"].get_filename() or "upload.jsonl"}
        return 200, self._file_obj(fid), None

    def _file_obj(self, fid: str) -> dict:
        f = self.files[fid]
        return {"id": fid, "object": "file", "bytes": len(f["bytes"]), "created_at": int(time.time()),
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}

    def _o_delete(self, h: Any, q: dict, raw: bytes, fid: str) -> tuple:
        if fid not in self.files:
            return 404, {"error": {"message": f"no file {fid}"}}, None
        self.deleted[fid] = self.files.pop(fid)
        return 200, {"id": fid, "object": "file", "deleted": True}, None

    def _content(self, h: Any, q: dict, raw: bytes, fid: str) -> tuple:
        if fid not in self.files:
            return 404, {"error": {"message": f"no file {fid}"}}, None
        return 200, None, self.files[fid]["bytes"]

    def _o_create(self, h: Any, q: dict, raw: bytes) -> tuple:
        from loopback_server import _parse_openai

        body = json.loads(raw)
        source = self.files.get(body.get("input_file_id"))
        if source is None:
            return 400, {"error": {"message": "input_file_id does not exist"}}, None
        jid = self._new_id("batch_")
        lines = [json.loads(x) for x in source["bytes"].decode().splitlines() if x.strip()]
        with self._lock:
            for line in lines:
                text, images = _parse_openai(line["body"])
                self.lines.append(BatchLine("openai", jid, line["custom_id"], text, images, line["body"]))
            self.jobs[jid] = {"id": jid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                              "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                              "status": "in_progress", "output_file_id": None, "error_file_id": None,
                              "created_at": int(time.time()), "request_counts": None,
                              "metadata": body.get("metadata"), "_lines": lines, "_polls": 0, "_done": False,
                              "_protocol": "openai", "_outcome": self.plan.pop(0) if self.plan else self.outcome}
        self._hold()
        return 200, self._public(self.jobs[jid]), None

    def _hold(self) -> None:
        self.created.set()
        if self.create_hold:
            self.release.wait(self.create_hold)

    def _o_get(self, h: Any, q: dict, raw: bytes, jid: str) -> tuple:
        job = self.jobs.get(jid)
        if job is None:
            return 404, {"error": {"message": f"No batch found with id '{jid}'"}}, None
        self._poll(job)
        return 200, self._public(job), None

    def _o_list(self, h: Any, q: dict, raw: bytes) -> tuple:
        items = [j for j in reversed(list(self.jobs.values())) if j["_protocol"] == "openai"]
        if "after" in q:
            ids = [j["id"] for j in items]
            items = items[ids.index(q["after"]) + 1:] if q["after"] in ids else []
        limit = int(q.get("limit", 20))
        page = items[:limit]
        return 200, {"object": "list", "data": [self._public(j) for j in page], "has_more": len(items) > limit,
                     "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}, None

    def _o_cancel(self, h: Any, q: dict, raw: bytes, jid: str) -> tuple:
        job = self.jobs.get(jid)
        if job is None:
            return 404, {"error": {"message": f"No batch found with id '{jid}'"}}, None
        self.finish("cancelled", jid)
        return 200, self._public(job), None

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    # -- Gemini ----------------------------------------------------------------------------------
    def _g_upload_start(self, h: Any, q: dict, raw: bytes) -> tuple:
        if h.headers.get("X-Goog-Upload-Command") != "start" or h.headers.get("X-Goog-Upload-Protocol") != "resumable":
            return 400, {"error": {"code": 400, "message": "not a resumable upload start", "status": "INVALID_ARGUMENT"}}, None
        if self.upload_hold:  # the client dies waiting: the upload never completes
            self.uploading.set()
            self.release.wait(self.upload_hold)
            return 500, {"error": {"code": 500, "message": "upload interrupted", "status": "INTERNAL"}}, None
        meta = json.loads(raw or b"{}").get("file") or {}
        name = meta.get("name") or self._new_id("files/upload-")
        if name in self.files:
            return 409, {"error": {"code": 409, "message": f"{name} already exists", "status": "ALREADY_EXISTS"}}, None
        uid = self._new_id("u")
        self._uploads[uid] = {"name": name, "display": meta.get("displayName"), "data": bytearray(),
                              "size": int(h.headers.get("X-Goog-Upload-Header-Content-Length") or 0),
                              "mime": h.headers.get("X-Goog-Upload-Header-Content-Type")}
        url = f"{self.owner.url}{h.path.partition('?')[0]}?upload_id={uid}&upload_protocol=resumable"
        return 200, {}, None, {"x-goog-upload-url": url, "x-goog-upload-status": "active"}

    def _g_upload_chunk(self, h: Any, q: dict, raw: bytes) -> tuple:
        upload = self._uploads.get(q["upload_id"])
        command = h.headers.get("X-Goog-Upload-Command", "")
        if upload is None or int(h.headers.get("X-Goog-Upload-Offset", -1)) != len(upload["data"]):
            return 400, {"error": {"code": 400, "message": "unknown upload or wrong offset"}}, None, \
                {"x-goog-upload-status": "final"}
        upload["data"] += raw
        if "finalize" not in command:
            return 200, {}, None, {"x-goog-upload-status": "active"}
        del self._uploads[q["upload_id"]]
        data = bytes(upload["data"])
        if upload["size"] and len(data) != upload["size"]:
            return 400, {"error": {"code": 400, "message": "size mismatch"}}, None, {"x-goog-upload-status": "final"}
        self.files[upload["name"]] = {"bytes": data, "purpose": "batch", "filename": upload["display"] or "",
                                      "mime": upload["mime"]}
        return 200, {"file": self._g_file(upload["name"])}, None, {"x-goog-upload-status": "final"}

    def _g_file(self, name: str) -> dict:
        f = self.files[name]
        return {"name": name, "displayName": f["filename"], "mimeType": f.get("mime") or "application/jsonl",
                "sizeBytes": str(len(f["bytes"])), "createTime": "2026-12-02T08:00:00Z", "state": "ACTIVE",
                "uri": f"{self.owner.url}/v1beta/{name}", "source": "UPLOADED" if f["purpose"] == "batch" else "GENERATED"}

    def _g_download(self, h: Any, q: dict, raw: bytes, name: str) -> tuple:
        if name not in self.files or self.files[name]["purpose"] == "batch":  # uploads cannot be downloaded
            return 404, {"error": {"code": 404, "message": f"{name} not found", "status": "NOT_FOUND"}}, None
        return 200, None, self.files[name]["bytes"]

    def _g_delete(self, h: Any, q: dict, raw: bytes, name: str) -> tuple:
        if name not in self.files:
            return 404, {"error": {"code": 404, "message": f"{name} not found", "status": "NOT_FOUND"}}, None
        self.deleted[name] = self.files.pop(name)
        return 200, {}, None

    def _g_create(self, h: Any, q: dict, raw: bytes, model: str) -> tuple:
        from loopback_server import _parse_gemini

        batch = json.loads(raw)["batch"]
        source = batch["inputConfig"].get("fileName")
        if source is not None:  # {"key", "request"} lines of an uploaded file
            if source not in self.files:
                return 400, {"error": {"code": 400, "message": f"{source} does not exist", "status": "INVALID_ARGUMENT"}}, None
            items = [json.loads(x) for x in self.files[source]["bytes"].decode().splitlines() if x.strip()]
            keyed = [(item.get("key", ""), item["request"]) for item in items]
        else:
            items = batch["inputConfig"]["requests"]["requests"]
            keyed = [((item.get("metadata") or {}).get("custom_id", ""), item["request"]) for item in items]
        jid = self._new_id("")
        with self._lock:
            for custom_id, request in keyed:
                text, images = _parse_gemini(request)
                self.lines.append(BatchLine("gemini", jid, custom_id, text, images, request))
            self.jobs[jid] = {"name": f"batches/{jid}", "_model": model, "_display": batch.get("displayName"),
                              "_state": "BATCH_STATE_PENDING", "_lines": items, "_polls": 0, "_done": False,
                              "_protocol": "gemini", "_output": None, "_source": source,
                              "_outcome": self.plan.pop(0) if self.plan else self.outcome}
        self._hold()
        return 200, self._g_public(self.jobs[jid]), None

    def _g_public(self, job: dict) -> dict:
        meta = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model": f"models/{job['_model']}", "displayName": job["_display"], "state": job["_state"],
                "name": job["name"], "createTime": "2026-12-02T08:00:00Z"}
        if job["_output"] is not None:
            meta["output"] = ({"responsesFile": job["_output"]} if job["_source"] else
                              {"inlinedResponses": {"inlinedResponses": job["_output"]}})
        out = {"name": job["name"], "metadata": meta}
        if job["_done"]:
            out["done"] = True
        return out

    def _g_get(self, h: Any, q: dict, raw: bytes, jid: str) -> tuple:
        job = self.jobs.get(jid)
        if job is None or job["_protocol"] != "gemini":
            return 404, {"error": {"code": 404, "message": f"batch {jid} not found", "status": "NOT_FOUND"}}, None
        if h.command == "POST":
            return self._g_cancel(h, q, raw, jid)
        self._poll(job)
        return 200, self._g_public(job), None

    def _g_cancel(self, h: Any, q: dict, raw: bytes, jid: str) -> tuple:
        if jid in self.jobs:
            self.finish("cancelled", jid)
        return 200, {}, None

    def _g_list(self, h: Any, q: dict, raw: bytes) -> tuple:
        items = [self._g_public(j) for j in reversed(list(self.jobs.values())) if j["_protocol"] == "gemini"]
        return 200, {"operations": items}, None

    # -- progress --------------------------------------------------------------------------------
    def _poll(self, job: dict) -> None:
        with self._lock:
            if job["_done"]:
                return
            job["_polls"] += 1
            if job["_outcome"] is not None and job["_polls"] > self.polls_to_finish:
                self._finish(job, job["_outcome"])

    def _answer(self, protocol: str, model: str, text: str, images: list[bytes]) -> tuple[int, dict]:
        """(HTTP status, body) of one request line, as the synchronous server would answer it."""
        from loopback_server import RecordedRequest, _Handler, answer_content

        rec = RecordedRequest(f"{protocol}-batch", "", model, {}, {}, text, images, time.monotonic())
        rule = self.owner._pick(text)
        fault = rule.fault if rule else "ok"
        if fault in _ERRORS:
            return int(fault), {"error": {"code": int(fault), "message": f"injected {fault}", "type": "loopback_error"}}
        content, finish = answer_content(fault, rec, self.owner._score(rec))
        usage = self.owner.reported_usage(text, images, content)
        build = _Handler._gemini_payload if protocol == "gemini" else _Handler._openai_payload
        return 200, build(rec, content, finish, usage)

    def _finish(self, job: dict, outcome: str) -> None:
        jid = job["id"] if "id" in job else job["name"].split("/")[-1]
        lines = [b for b in self.lines if b.job_id == jid]
        answered = len(lines) if outcome == "completed" else self.answered_before_expiry if outcome == "expired" else 0
        results = [(line, *self._answer(line.protocol, job.get("_model") or line.body.get("model", ""), line.text,
                                       line.images)) for line in lines[:answered]]
        job["_done"] = True
        if job["_protocol"] == "gemini":
            job["_state"] = _GSTATE[outcome]
            out = []
            for k, (line, status, body) in enumerate(results):
                meta = {} if k >= len(results) - self.malformed else {"custom_id": line.custom_id}
                out.append({"response": body, "metadata": meta} if status == 200 else
                           {"error": {"code": status, "message": body["error"]["message"]}, "metadata": meta})
            job["_output"] = out
            if job["_source"]:  # the same results as a JSONL file of {"key", "response" | "error"} lines
                rows = [json.dumps({"key": r["metadata"]["custom_id"], **{k: v for k, v in r.items() if k != "metadata"}})
                        if r["metadata"] else json.dumps({k: v for k, v in r.items() if k != "metadata"})[:40]
                        for r in out]
                name = f"files/batch-{jid}-responses"
                self.files[name] = {"bytes": "".join(x + "\n" for x in rows).encode(), "purpose": "batch_output",
                                    "filename": name}
                job["_output"] = name
            return
        ok = [(ln, b) for ln, s, b in results if s == 200]
        bad = [(ln, s, b) for ln, s, b in results if s != 200]
        output = [json.dumps({"id": f"batch_req_{k}", "custom_id": ln.custom_id, "error": None,
                              "response": {"status_code": 200, "request_id": f"req_{k}", "body": b}})
                  for k, (ln, b) in enumerate(ok)]
        cut = len(output) - self.malformed  # the last lines are unreadable
        output = [f'{{"custom_id": "{ln.custom_id[:6]}' if k >= cut else x for k, (x, (ln, _)) in enumerate(zip(output, ok))]
        errors = [json.dumps({"id": f"batch_req_e{k}", "custom_id": ln.custom_id, "error": None,
                              "response": {"status_code": s, "request_id": f"req_e{k}", "body": b}})
                  for k, (ln, s, b) in enumerate(bad)]
        for name, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                fid = self._new_id("file-")
                self.files[fid] = {"bytes": ("\n".join(rows) + "\n").encode(), "purpose": "batch_output",
                                   "filename": f"{job['id']}_{name}.jsonl"}
                job[name] = fid
        job["status"] = _STATUS[outcome]
        job["request_counts"] = {"total": len(lines), "completed": len(ok), "failed": len(bad)}
        if outcome == "failed":
            job["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "injected failure"}]}
