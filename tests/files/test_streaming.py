"""A large upload streams: the web process never holds the file in memory."""

from __future__ import annotations

from tests.files.helpers import blobs_named, rows
from tests.fixtures.processes import run_probe

SIZE = 256 * 1024 * 1024
# The upload path holds three 1 MiB buffers it reads the body into (scanner/files/multipart.py)
# and an 8 KiB sniff for the MIME type; a parser that kept the file, or spooled it through
# memory, would raise the peak by at least SIZE. glibc's sliding mmap threshold adds a few tens of MiB of
# allocator noise whatever the size, so the file is large enough that a quarter of it stands well
# above that noise and still fails any design that holds a sizeable share of the file.
BOUND = SIZE // 4


def test_a_large_upload_does_not_hold_the_file_in_memory(app, client, user):
    result = run_probe("tests.files.rss_probe", user.access_token, str(SIZE))

    assert result["status"] == 201, result["answer"]
    assert result["answer"]["file_size"] == SIZE
    assert result["answer"]["hash_sha256"] == result["sha256"]
    assert result["peak_growth"] < BOUND, f"peak RSS rose {result['peak_growth'] / 2**20:.1f} MiB"
    [blob] = blobs_named(app, result["sha256"])
    assert blob.stat().st_size == SIZE

    for file_id in (result["answer"]["id"], result["warm_id"]):
        assert client.delete(f"/api/files/{file_id}", headers=user.headers).status_code == 200
    assert blobs_named(app, result["sha256"]) == []
    assert rows(app, "files") == {"files": 0}
