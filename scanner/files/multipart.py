"""multipart/form-data read in large blocks into two buffers of its own, the parts' bytes handed
on as views of those buffers: between the socket and the hashes and the blob store the file is
never copied.

It reads what werkzeug's decoder reads (line breaks CRLF, or LF or CR alone; white space after a
boundary; a preamble and an epilogue, ignored), and refuses what it refuses (a part without
Content-Disposition, a body that ends before its closing boundary), raising ValueError.

The buffers are filled in turn. A view handed on stays valid until its buffer is filled again,
and the reader says when that is about to happen (`before_refill`): whoever handed the view to
a thread waits for it there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from werkzeug.http import parse_options_header

from .body import ReadInto

BLOCK = 1024 * 1024
BUFFERS = 3  # one being read into while the threads work on the two before it
# A part's header block: a few hundred bytes in practice. The cap (or half a block, if less)
# keeps the bytes carried from one block to the next within the next block.
MAX_HEAD_BYTES = 16 * 1024
MAX_BOUNDARY = 200  # RFC 2046: at most 70
# White space allowed between a boundary and its line break (werkzeug allows any amount).
MAX_PADDING = 64

_BLANK_LINE = re.compile(rb"\r\n\r\n|\r\r|\n\n")
_CONTINUATION = re.compile(rb"(?:\r\n|\n|\r)[ \t]")
_CR, _LF = 13, 10
_PADDING = b" \t\f\v"


@dataclass(frozen=True)
class Part:
    """The start of a part; its bytes follow as memoryviews, up to the next Part or the end."""

    name: str | None
    filename: str | None


class _Need(Exception):
    """More bytes are needed to decide; raised inside a step, never outside this module."""


class MultipartReader:
    def __init__(
        self,
        boundary: bytes,
        readinto: ReadInto,
        block: int = BLOCK,
        before_refill: Callable[[bytearray], object] = lambda buffer: None,
    ) -> None:
        if not 0 < len(boundary) <= min(MAX_BOUNDARY, block // 4):
            raise ValueError(f"the boundary must be 1 to {MAX_BOUNDARY} characters")
        self.marker = b"--" + boundary
        self.max_head = min(MAX_HEAD_BYTES, block // 2)
        self.readinto, self.before_refill = readinto, before_refill
        self._buffers = tuple(bytearray(block) for _ in range(BUFFERS))
        self._current = 0
        self.buf = self._buffers[0]
        self.pos = self.end = 0
        self.eof = False

    def events(self) -> Iterator[Part | memoryview]:
        """Each part's start and its bytes, up to the closing boundary (whatever follows is not read)."""
        if self._preamble_closes():
            return
        while True:
            yield self._headers()
            self._skip_line_break()
            empty = True
            while True:
                view, done, closing = self._data(empty)
                if view:
                    empty = False
                    yield view
                if closing:
                    return
                if done:
                    break

    # Steps: each either moves self.pos forward or raises _Need, after which it runs again on the
    # same bytes and more.

    def _preamble_closes(self) -> bool:
        """Read past the preamble; True when the first boundary is the closing one (no parts)."""
        while True:
            idx = self.buf.find(self.marker, self.pos, self.end)
            if idx >= 0:
                try:
                    after, closing = self._after_boundary(idx + len(self.marker))
                except _Need:
                    self._more(idx)
                    continue
                if after is not None:
                    self.pos = after
                    return closing
                self.pos = idx + 1
                continue
            # Nothing here is kept: only the tail that may begin a boundary goes on.
            self._more(max(self.pos, self.end - len(self.marker)))

    def _headers(self) -> Part:
        while True:
            match = _BLANK_LINE.search(self.buf, self.pos, self.end)
            if match is None:
                if self.end - self.pos > self.max_head:
                    raise ValueError(f"a part's headers are longer than {self.max_head} bytes")
                self._more(self.pos)
                continue
            headers = _parse_headers(bytes(self.buf[self.pos : match.start()]))
            # The blank line's second line break is the first byte of the data: werkzeug strips
            # it as the data's leading line break, which lets an empty part's boundary follow at once.
            self.pos = (match.start() + match.end()) // 2
            if "content-disposition" not in headers:
                raise ValueError("Missing Content-Disposition header")
            _, options = parse_options_header(headers["content-disposition"])
            return Part(options.get("name"), options.get("filename"))

    def _data(self, empty: bool) -> tuple[memoryview | None, bool, bool]:
        """(bytes of the part, whether the part ended, whether that was the closing boundary);
        `empty`: none of the part's bytes were handed on yet."""
        start = search = self.pos
        while True:
            idx = self.buf.find(self.marker, search, self.end)
            if idx < 0:
                # A boundary (a line break, the marker) may begin in the last bytes: they wait
                # for the next block, with one byte before them to tell a line break by.
                cut = max(start, self.end - len(self.marker) - 3)
                break
            data_end = _line_break_before(self.buf, start, idx, empty)
            if data_end is None:  # the marker inside a line is data
                search = idx + 1
                continue
            try:
                after, closing = self._after_boundary(idx + len(self.marker))
            except _Need:
                cut = data_end
                break
            if after is None:
                search = idx + 1
                continue
            self.pos = after
            return memoryview(self.buf)[start:data_end], True, closing
        view = memoryview(self.buf)[start:cut]
        self.pos = cut
        if view:
            return view, False, False
        self._more(self.pos)
        return None, False, False

    def _skip_line_break(self) -> None:
        while True:
            if self.end - self.pos < 2 and not self.eof:
                self._more(self.pos)
                continue
            if self.buf.startswith(b"\r\n", self.pos, self.end):
                self.pos += 2
            elif self.pos < self.end and self.buf[self.pos] in (_CR, _LF):
                self.pos += 1
            return

    def _after_boundary(self, i: int) -> tuple[int | None, bool]:
        """Where the next part's headers start after a boundary marker ending at i, and whether
        it closes the form; (None, False) when it is no boundary; raises _Need when undecided."""
        buf, end = self.buf, self.end
        if end - i < 2 and not self.eof:
            raise _Need
        if buf.startswith(b"--", i, end):
            return i + 2, True
        j = i
        while j < end and j - i <= MAX_PADDING and buf[j] in _PADDING:
            j += 1
        if j - i > MAX_PADDING:
            return None, False
        if end - j < 2 and not self.eof:  # a CR may yet be followed by its LF
            raise _Need
        if buf.startswith(b"\r\n", j, end):
            return j + 2, False
        if j < end and buf[j] in (_CR, _LF):
            return j + 1, False
        return None, False

    def _more(self, keep: int) -> None:
        """Carry buf[keep:end] to the start of the next buffer and fill the rest of it."""
        if self.eof:
            raise ValueError("the body ended before the form's closing boundary")
        carried = self.end - keep
        self._current = (self._current + 1) % len(self._buffers)
        target = self._buffers[self._current]
        self.before_refill(target)
        target[:carried] = self.buf[keep : self.end]
        self.buf, self.pos, self.end = target, 0, carried
        room = memoryview(target)
        while self.end < len(target):
            n = self.readinto(room[self.end :])
            if not n:
                self.eof = True
                break
            self.end += n


def _line_break_before(buf: bytearray, start: int, idx: int, empty: bool) -> int | None:
    """Where data ends if a boundary marker at idx follows a line break. At the start of a part
    the line break that ends its headers, already skipped, serves: the part is empty."""
    if idx == start:
        return start if empty else None
    if idx - 2 >= start and buf.startswith(b"\r\n", idx - 2, idx):
        return idx - 2
    if buf[idx - 1] in (_CR, _LF):
        return idx - 1
    return None


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in _CONTINUATION.sub(b" ", block).splitlines():
        line = line.strip(b" \t")
        if line:
            name, _, value = line.decode().partition(":")
            headers.setdefault(name.strip(" \t").lower(), value.strip(" \t"))
    return headers
