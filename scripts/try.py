"""`make try`: the service with the VirusTotal emulator as its VirusTotal, so it can be tried
with no key and no internet. Data goes to instance/try (delete it to start afresh); nothing
secret is created: the emulator accepts the key printed below and no other.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from stack import ROOT, Stack, free_port

# Not a secret: the emulator's only key, printed for pasting. Real VirusTotal keys are 64 hex digits.
EMULATOR_KEY = "scanner-try-emulator-key"
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def instructions(web_url: str, vt_url: str, workdir: Path) -> str:
    api = f"{web_url}/api"
    return f"""
scanner is running, with a VirusTotal emulator in place of VirusTotal (no real key needed).

  API documentation (Swagger UI)  {api}/docs
  VirusTotal emulator             {vt_url}/api/v3   (the service's VT_API_URL)
  API key the emulator accepts    {EMULATOR_KEY}

Register, sign in, add that key and scan the EICAR test file (paste into another terminal):

  API={api}
  curl -s -X POST $API/auth/register -H 'Content-Type: application/json' \\
    -d '{{"username": "analyst", "email": "analyst@example.com", "password": "Correct-Horse-42"}}'
  TOKEN=$(curl -s -X POST $API/auth/login -H 'Content-Type: application/json' \\
    -d '{{"username": "analyst", "password": "Correct-Horse-42"}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST $API/keys/ -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"name": "emulator", "key_value": "{EMULATOR_KEY}"}}'
  printf '%s' 'X5O!P%@AP[4\\PZX54(P^)7CC)7}}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' > eicar.com
  SCAN=$(curl -s -X POST $API/files/upload -H "Authorization: Bearer $TOKEN" -F file=@eicar.com \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["scan"]["scan_id"])')
  curl -s $API/scan/$SCAN/status -H "Authorization: Bearer $TOKEN"
  # once the status says completed (about 20 s: the key's quota is paced like a public key's):
  curl -s -o report.pdf "$API/scan/$SCAN/export?format=pdf" -H "Authorization: Bearer $TOKEN"

In Swagger UI, "Authorize" signs in with the same username and password.
Data and logs: {workdir}. Press Ctrl+C to stop everything.
"""


def wait_for_stop() -> None:
    """Until Ctrl+C or SIGTERM, which are awaited rather than raised so the stack stops in order.
    Blocked only now: children inherit the signal mask, and must still hear their own SIGTERM."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_DFL)  # a job started in the background ignores SIGINT
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    signal.sigwait(STOP_SIGNALS)


def main() -> int:
    workdir = Path(os.environ.get("TRY_INSTANCE_DIR", ROOT / "instance" / "try"))
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    web_port = int(os.environ.get("PORT", "8000"))
    vt_port = int(os.environ.get("VT_EMULATOR_PORT", "0")) or free_port()
    print(f"Starting the VirusTotal emulator and the service on http://127.0.0.1:{web_port} ...", flush=True)
    emulator_args = ["--key", EMULATOR_KEY, "--queued-seconds", "2", "--progress-seconds", "3", "--quiet"]
    with (
        open(workdir / "try.log", "a") as log,
        Stack(workdir, log, web_port=web_port, vt_port=vt_port, emulator_args=emulator_args) as stack,
    ):
        print(instructions(stack.web_url, stack.vt_url, workdir), flush=True)
        wait_for_stop()
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
