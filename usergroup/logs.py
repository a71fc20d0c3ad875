"""Log lines that can be followed across a request and the tasks it queues.

Every request gets an id: the `X-Request-ID` its proxy sent, when that is short and made of safe
characters, or a new one. The id is answered in the response's `X-Request-ID` header and kept in a
context variable while the request runs, so `ContextFilter` can put it on every log record of
that request, whichever logger wrote it. A task queued during the request carries the id in its
message headers; the worker puts it, and the task's own id, on every record the task writes.

`JsonFormatter` writes one JSON object a line, for production log collectors; with DEBUG the
lines stay readable text (see LOGGING in settings).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# A proxy's id (nginx's $request_id, a UUID, a load balancer's trace id) fits; anything longer or
# with other characters (spaces, quotes, newlines that would forge log lines) is replaced.
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# The Celery message header that carries the id from the request to the worker.
TASK_HEADER = "request_id"

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
current_task_id: ContextVar[str | None] = ContextVar("current_task_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """The incoming id when it is short and safe, else a new one."""
    if value and VALID_ID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Give every request an id (see the module docstring), answer it in `X-Request-ID` and keep it
    as `request.request_id`. First in MIDDLEWARE, so records written by every later middleware,
    the view and Django's own error log (a 500's traceback) carry it.

    With SERVER_TIMING on, it also answers how long the server took, every middleware included,
    in a `Server-Timing: app;dur=<ms>` header: the load test (bench/load/) reads it, and browsers'
    developer tools show it. Off by default, as it tells any visitor how long each page took."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.server_timing = settings.SERVER_TIMING

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        rid = accepted_request_id(request.META.get(META_KEY))
        request.request_id = rid  # type: ignore[attr-defined]  # our own attribute on the request
        token = current_request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[HEADER] = rid
        if self.server_timing:
            response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response


class ContextFilter(logging.Filter):
    """Puts `request_id`, `task_id` and `ids` (both as one short text, for plain lines) on every
    record. Attached to the handlers, so records of every logger get them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # Django logs a 4xx/5xx answer after the middleware is done with it, but passes the
            # request along.
            request = getattr(record, "request", None)
            record.request_id = current_request_id.get() or getattr(request, "request_id", None)
        if not hasattr(record, "task_id"):
            record.task_id = current_task_id.get()
        # Read back through getattr: LogRecord's type knows no extra attributes.
        request_id, task_id = getattr(record, "request_id", None), getattr(record, "task_id", None)
        parts = []
        if request_id:
            parts.append(f"request={request_id}")
        if task_id:
            parts.append(f"task={task_id}")
        record.ids = " ".join(parts) or "-"
        return True


# What every LogRecord has; anything else on a record came from `extra=` and is logged too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
    "ids",
}


def _plain(value: Any) -> Any:
    """A JSON-friendly value: scalars as they are, anything else as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the request and task
    ids when there are any, a traceback when there is one, and whatever `extra=` added."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _plain(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# --- Celery -------------------------------------------------------------------------------
# Connected in usergroup/celery.py. Eager tasks (no broker) run inside the request, whose id
# is in the context already; a worker reads it from the message headers.

_task_tokens: dict[str, list[tuple[ContextVar, Token]]] = {}


def add_request_id_to_message(headers: dict | None = None, **_kwargs: Any) -> None:
    """before_task_publish: a task queued while a request (or a task) runs carries its id."""
    rid = current_request_id.get()
    if rid and headers is not None:
        headers.setdefault(TASK_HEADER, rid)


def enter_task(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    """task_prerun: the task's id, and the request id it was queued with, on its log records."""
    if task_id is None:
        return
    tokens = [(current_task_id, current_task_id.set(task_id))]
    incoming = None
    if task is not None:
        # A worker has message headers as attributes of the request; `apply()` keeps them apart.
        incoming = task.request.get(TASK_HEADER) or (task.request.headers or {}).get(TASK_HEADER)
    if isinstance(incoming, str) and VALID_ID.fullmatch(incoming):
        tokens.append((current_request_id, current_request_id.set(incoming)))
    _task_tokens[task_id] = tokens


def leave_task(task_id: str | None = None, **_kwargs: Any) -> None:
    """task_postrun: back to the ids of whatever ran before the task (nothing, on a worker)."""
    for var, token in reversed(_task_tokens.pop(task_id or "", [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (a thread pool); clear it instead
            var.set(None)
