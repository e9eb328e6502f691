"""The type of an uploaded file from its first bytes, in pure Python (no system library).

Executables and documents that malware analysis meets most (PE, ELF, Mach-O, OLE, RTF, PDF)
are read from their signatures here; archives, images and media come from `filetype`'s table;
what decodes as text is text, told apart by a first line (scripts, HTML, XML, JSON). Names
follow libmagic's, so answers stored before keep their meaning.
"""

from __future__ import annotations

import json
import struct

import filetype

OCTET_STREAM = "application/octet-stream"

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "elf"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc .xls .msi, Outlook .msg
    (b"{\\rtf", "text/rtf"),
    (b"%PDF-", "application/pdf"),
    (b"MZ", "mz"),
)
_ELF_TYPES = {1: "application/x-object", 2: "application/x-executable", 3: "application/x-sharedlib"}
_SHEBANGS = (
    (b"python", "text/x-script.python"),
    (b"perl", "text/x-perl"),
    (b"ruby", "text/x-ruby"),
    (b"node", "application/javascript"),
    (b"php", "text/x-php"),
    (b"sh", "text/x-shellscript"),  # sh, bash, zsh, dash: last, as the widest match
)
# Bytes that never occur in text: controls other than tab, line feed, form feed, carriage
# return and escape.
_BINARY_BYTES = bytes(set(range(32)) - {9, 10, 12, 13, 27})


def mime_type(head: bytes) -> str:
    """The MIME type of a file whose first bytes are `head` (a few KiB are enough)."""
    for prefix, name in _PREFIXES:
        if head.startswith(prefix):
            if name == "elf":
                return _elf(head)
            if name == "mz":
                return _mz(head)
            return name
    if head.startswith(b"\xca\xfe\xba\xbe"):  # a universal Mach-O, or a Java class file
        return "application/x-mach-binary" if _u32(head, 4, ">") < 32 else "application/x-java-applet"
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    return _text(head) or OCTET_STREAM


def _u32(head: bytes, offset: int, order: str) -> int:
    chunk = head[offset : offset + 4]
    return struct.unpack(f"{order}I", chunk)[0] if len(chunk) == 4 else 0


def _elf(head: bytes) -> str:
    order = ">" if head[5:6] == b"\x02" else "<"
    e_type = struct.unpack(f"{order}H", head[16:18])[0] if len(head) >= 18 else 0
    return _ELF_TYPES.get(e_type, "application/x-executable")


def _mz(head: bytes) -> str:
    # A PE file is an MZ stub whose header at 0x3c points to "PE\0\0"; without one it is DOS.
    pe_offset = _u32(head, 0x3C, "<")
    if head[pe_offset : pe_offset + 4] == b"PE\x00\x00":
        return "application/vnd.microsoft.portable-executable"
    return "application/x-dosexec"


def _text(head: bytes) -> str | None:
    if not head or len(head.translate(None, _BINARY_BYTES)) != len(head):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a character; other text is in a single-byte code page.
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else head.decode("latin-1")
    first = text.lstrip("\ufeff \t\r\n")
    if first.startswith("#!"):
        line = first.split("\n", 1)[0].encode()
        return next((name for word, name in _SHEBANGS if word in line), "text/plain")
    lowered = first[:64].lower()
    if lowered.startswith(("<!doctype html", "<html")):
        return "text/html"
    if lowered.startswith("<?xml"):
        return "text/xml"
    if first[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError:
            return "text/plain"
        return "application/json"
    return "text/plain"
