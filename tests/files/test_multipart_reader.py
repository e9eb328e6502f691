"""The upload's multipart reader finds the same parts and the same bytes as werkzeug's decoder,
wherever its blocks and the socket's reads happen to split the body, and refuses what werkzeug
refuses."""

from __future__ import annotations

import random

import pytest
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder

from scanner.files.multipart import MultipartReader, Part

B = b"b0undary-7c1f"
MARK = b"--" + B


def form(*parts: bytes, lb: bytes = b"\r\n", preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    # The filler puts what is worth cutting past the smallest block the tests read with.
    parts = (part(b'Content-Disposition: form-data; name="filler"', b"f" * 200, lb), *parts)
    return preamble + b"".join(MARK + lb + p + lb for p in parts) + MARK + b"--" + lb + epilogue


def part(headers: bytes, data: bytes, lb: bytes = b"\r\n") -> bytes:
    return headers + lb + lb + data


FILE_HEAD = b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream'
FIELD_HEAD = b'Content-Disposition: form-data; name="note"'
# File contents that hold what a boundary begins with, in the middle, at the end, or all but.
TRICKY = {
    "marker-without-line-break": b"abc" + MARK + b"\r\ndef",
    "marker-followed-by-text": b"abc\r\n" + MARK + b"X\r\nmore",
    "marker-with-padding-then-text": b"abc\r\n" + MARK + b"  \tX",
    "partial-marker-at-the-end": b"abc\r\n" + MARK[:-1],
    "ends-with-cr": b"abc\r",
    "ends-with-lf": b"abc\n",
    "ends-with-crlf": b"abc\r\n",
    "only-line-breaks": b"\r\n\r\n\n\r",
    "dashes": b"--\r\n--\r\n" + MARK[:5],
}
rng = random.Random(7)
BIG = b"".join(rng.randbytes(rng.randrange(1, 700)) + b"\r\n" + MARK[: rng.randrange(len(MARK))] for _ in range(30))

BODIES = {
    "file-and-field": form(part(FIELD_HEAD, b"hello"), part(FILE_HEAD, b"\x00\x01 binary \xff")),
    "empty-file-and-empty-field": form(part(FILE_HEAD, b""), part(FIELD_HEAD, b"")),
    **{f"file-{name}": form(part(FILE_HEAD, data), part(FIELD_HEAD, b"x")) for name, data in TRICKY.items()},
    "lf-line-breaks": form(
        part(FIELD_HEAD, b"v", b"\n"), part(FILE_HEAD.replace(b"\r\n", b"\n"), b"d\n", b"\n"), lb=b"\n"
    ),
    "padding-after-boundaries": form(part(FILE_HEAD, b"data")).replace(MARK + b"\r\n", MARK + b" \t \r\n"),
    "preamble-and-epilogue": form(part(FILE_HEAD, b"data"), preamble=b"ignore me\r\n", epilogue=b"and me"),
    "continued-header": form(part(b'Content-Disposition: form-data;\r\n name="file"; filename="a b.txt"', b"x")),
    "big-file": form(part(FIELD_HEAD, b"first"), part(FILE_HEAD, BIG), part(FIELD_HEAD, b"last")),
}
MALFORMED = {
    "no-closing-boundary": form(part(FILE_HEAD, b"data"))[: -len(b"--\r\n")],
    "cut-inside-the-file": form(part(FILE_HEAD, BIG))[:2000],
    "cut-inside-the-headers": MARK + b"\r\nContent-Disposition: form-da",
    "no-content-disposition": form(part(b"X-Other: 1", b"data")),
    "not-multipart": b"just some bytes that are not a form",
}


def werkzeug_parts(body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    decoder = MultipartDecoder(B)
    decoder.receive_data(body)
    decoder.receive_data(None)
    parts: list[list] = []
    while not isinstance(event := decoder.next_event(), Epilogue):
        if isinstance(event, Field | File):
            parts.append([event.name, getattr(event, "filename", None), b""])
        elif isinstance(event, Data):
            parts[-1][2] += event.data
    return [tuple(p) for p in parts]


def reader_parts(body: bytes, block: int, piece: int) -> list[tuple[str | None, str | None, bytes]]:
    sent = memoryview(body)

    def readinto(buffer: memoryview) -> int:
        nonlocal sent
        n = min(len(buffer), piece, len(sent))
        buffer[:n] = sent[:n]
        sent = sent[n:]
        return n

    # Views are read only when the reader says their buffer is about to be filled again (or at the
    # end), as the upload's threads may: a buffer refilled unannounced would show here.
    parts: list[list] = []
    held: list[tuple[list, memoryview]] = []

    def before_refill(buffer: bytearray) -> None:
        for target, view in held:
            if view.obj is buffer:
                target[2] += bytes(view)
        held[:] = [(target, view) for target, view in held if view.obj is not buffer]

    for event in MultipartReader(B, readinto, block=block, before_refill=before_refill).events():
        if isinstance(event, Part):
            parts.append([event.name, event.filename, b""])
        else:
            held.append((parts[-1], event))
    for target, view in held:
        target[2] += bytes(view)
    return [tuple(p) for p in parts]


def splits(body: bytes) -> list[tuple[int, int]]:
    """(block, read size): blocks of every size from the smallest to the body's length (or a
    span longer than any boundary line, for a long body), so that a block ends at every byte past
    the filler; reads of a few bytes or a whole block, and of one byte for a few block sizes."""
    blocks = range(256, (len(body) if len(body) < 1024 else 256 + 4 * len(MARK)) + 2)
    one_byte = [(block, 1) for block in (256, 301)]
    return [(block, piece) for block in blocks for piece in (7, 1 << 30)] + one_byte + [(1 << 20, 1 << 30)]


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_reader_finds_what_werkzeug_finds_wherever_the_reads_split_the_body(body):
    expected = werkzeug_parts(body)
    assert expected  # the bodies are forms werkzeug reads

    for block, piece in splits(body):
        assert reader_parts(body, block, piece) == expected, (block, piece)


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_the_reader_refuses_what_werkzeug_refuses(body):
    with pytest.raises(ValueError):
        werkzeug_parts(body)
    for block, piece in splits(body):
        with pytest.raises(ValueError):
            reader_parts(body, block, piece)


def test_headers_that_never_end_are_refused_without_reading_the_rest():
    endless = MARK + b"\r\nContent-Disposition: form-data; name=file" + b"x" * (64 * 1024)

    with pytest.raises(ValueError, match="headers are longer"):
        reader_parts(endless, 1024 * 1024, 1 << 30)
