"""Answers a web process remembers for as long as the events say they still hold: the reads clients
repeat most (a scan's status while they poll it, a page of their history) are then answered
without a database or Redis round trip.

Each answer belongs to an object that announces its changes (scanner/events.py): a scan (each task
of the pipeline publishes after its step, and a deleted file's scans are announced) or a user's
cached reads (history pages, finished reports: published with each new version of them). A memory
holds an object's answers while this process hears its events, and drops them as the object's event
arrives:

- A read that may have raced a change keeps nothing: an answer is kept only if no event of the
  memory's kind arrived since the read began (its query may have run before a commit whose event
  came while it was being made).
- Losing the subscription (or gaining it) drops everything; while it is down, and always without
  Redis, nothing is kept and every read is made afresh.
- A change no event announced (a commit within a task before the one event at its end, a waiting
  scan woken by another's verdict, a publish lost to a Redis blip) shows within
  `READ_MEMORY_SECONDS` (2 s by default, the bound of a revoked token too): no answer is kept
  longer, and answers past it are let go as new ones are kept.

Each memory is bounded to `READ_MEMORY_MAX_OBJECTS` objects, the oldest leaving first, and a few
answers each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from flask import current_app

from . import events

PARTS_PER_OBJECT = 16  # e.g. history pages with their filters, per user


class Memory:
    def __init__(self, kind: str) -> None:
        self._suffix = f":{kind}".encode()  # an event channel ends ":<kind>:<object id>"
        self._lock = threading.Lock()
        # object id -> (good until: its last answer's, {part: (good until, answer)}), the object
        # kept longest ago first: the first whose time is up are the first to let go
        self._objects: dict[str, tuple[float, dict[Hashable, tuple[float, Any]]]] = {}
        self._heard = 0  # events of this kind heard, and subscriptions lost or made
        events.observe(self._observe)

    def _observe(self, channel: bytes | None) -> None:
        if channel is None:
            self.drop(None)
            return
        kind, _, ident = channel.rpartition(b":")
        if kind.endswith(self._suffix):
            self.drop(ident.decode(errors="replace"))

    def drop(self, ident: str | None) -> None:
        """Forget an object's answers (None: every object's), and keep nothing read before now."""
        with self._lock:
            self._heard += 1
            if ident is None:
                self._objects.clear()
            else:
                self._objects.pop(ident, None)

    def get(self, ident: str, part: Hashable = None) -> Any | None:
        """The answer kept for this object (and part of it), if it still holds."""
        kept = self._objects.get(ident)
        found = kept[1].get(part) if kept is not None else None
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def reading(self) -> int | None:
        """Call before making an answer that `keep` may keep; None when nothing may be kept (no
        events are heard, or the memory is off)."""
        if current_app.config["READ_MEMORY_SECONDS"] <= 0 or not events.hearing():
            return None
        return self._heard

    def keep(self, ident: str, answer: Any, began: int | None, part: Hashable = None) -> None:
        """Keep `answer`, made by a read that began at `began` (from `reading()`)."""
        if began is None:
            return
        config = current_app.config
        now = time.monotonic()
        until = now + config["READ_MEMORY_SECONDS"]
        with self._lock:
            if self._heard != began:
                return
            _, parts = self._objects.pop(ident, (until, {}))
            self._objects[ident] = (until, parts)  # now the last kept
            parts.pop(part, None)
            parts[part] = (until, answer)
            if len(parts) > PARTS_PER_OBJECT:
                del parts[next(iter(parts))]
            while self._objects:
                first = next(iter(self._objects))
                if self._objects[first][0] > now and len(self._objects) <= config["READ_MEMORY_MAX_OBJECTS"]:
                    break
                del self._objects[first]
