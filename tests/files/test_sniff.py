"""Content types from the first bytes, with no system library."""

from __future__ import annotations

import pytest

from scanner.files.sniff import mime_type
from tests.files import samples
from vt_emulator import EICAR


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (EICAR, "text/plain"),
        (samples.PE, "application/vnd.microsoft.portable-executable"),
        (samples.DOS_EXE, "application/x-dosexec"),
        (samples.ELF_EXECUTABLE, "application/x-executable"),
        (samples.ELF_SHARED, "application/x-sharedlib"),
        (samples.MACH_O, "application/x-mach-binary"),
        (samples.OLE, "application/x-ole-storage"),
        (samples.RTF, "text/rtf"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (samples.ZIP, "application/zip"),
        (samples.DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (samples.SHELL, "text/x-shellscript"),
        (samples.PYTHON, "text/x-script.python"),
        (samples.HTML, "text/html"),
        (samples.JSON, "application/json"),
        (samples.LATIN1, "text/plain"),
        ("naïve café ✓\n".encode()[:-2], "text/plain"),  # cut inside a character
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "application/gzip"),
        (b"\x00\x01\x02\x03" + bytes(range(256)), "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_type_is_read_from_the_first_bytes(head, expected):
    assert mime_type(head) == expected
