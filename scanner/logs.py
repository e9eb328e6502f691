"""Logs of the web and worker processes: one line per event, JSON in production.

Every line carries the context of the work it belongs to: the request id in the web process, and
in the worker the task, its id and the request id of the request that started it (carried in the
task message's headers, and on into every task that task starts), so one id follows a scan from
upload to verdict. Fields given with `extra={...}` become keys of the JSON object.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from celery import signals

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_HANDLER_NAME = "scanner"


def bind(**fields: Any) -> contextvars.Token:
    """Add fields to every line logged from here on in this thread (or task); `unbind` ends them."""
    return _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def context() -> dict[str, Any]:
    return dict(_context.get() or {})


def request_id() -> str | None:
    """The id of the request being answered (in a task: of the request that started it)."""
    return (_context.get() or {}).get("request_id")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The console format: the same fields as JSON, the extra ones as key=value at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return text + "".join(f" {k}={v}" for k, v in extra.items())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it), like logging's last resort."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: str, fmt: str) -> None:
    """One handler on the root logger, to stderr, in the chosen format; repeated calls replace it."""
    handler = _StderrHandler()
    handler.name = _HANDLER_NAME
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not raw stderr


# -- Celery: the request id travels in each task message's headers --------------------------------

_task_tokens: dict[str, contextvars.Token] = {}


def _on_publish(headers: dict | None = None, **kwargs: Any) -> None:
    request_id = (_context.get() or {}).get("request_id")
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


def _on_task_start(task_id: str | None = None, task: Any = None, args: tuple = (), **kwargs: Any) -> None:
    fields: dict[str, Any] = {"task": getattr(task, "name", None), "task_id": task_id}
    request_id = getattr(getattr(task, "request", None), "request_id", None)
    fields["request_id"] = request_id
    if args:
        # A task's first argument is the id of the row it works on, named for it (scan_id, lookup_id,
        # job_id): the line says which scan or lookup it is about.
        fields[_first_parameter(task)] = str(args[0])
    if task_id:
        _task_tokens[task_id] = bind(**fields)


@functools.lru_cache(maxsize=64)
def _first_parameter(task: Any) -> str:
    # Once per task type: reading a signature costs more than the rest of the bookkeeping of a task.
    try:
        return next(iter(inspect.signature(task.run).parameters))
    except (StopIteration, TypeError, ValueError):
        return "subject_id"


def _on_task_end(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        # A task that ended in another context than it started leaves nothing to undo here.
        with contextlib.suppress(ValueError):
            unbind(token)


def _keep_our_logging(**kwargs: Any) -> None:
    """Connected to Celery's setup_logging: the worker keeps the configuration create_app made."""


def connect_celery_logging() -> None:
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    signals.before_task_publish.connect(_on_publish, weak=False)
    signals.task_prerun.connect(_on_task_start, weak=False)
    signals.task_postrun.connect(_on_task_end, weak=False)
