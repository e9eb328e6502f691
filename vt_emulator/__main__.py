"""python -m vt_emulator --port 8765 --key KEY[:per_min[:per_day]] ...

Prints the base URL, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .server import Emulator
from .state import EmulatorConfig


def _key(spec: str) -> tuple[str, int, int]:
    key, *limits = spec.split(":")
    if not key or len(limits) > 2:
        raise argparse.ArgumentTypeError("expected KEY[:per_min[:per_day]]")
    try:
        per_minute = int(limits[0]) if limits else 4
        per_day = int(limits[1]) if len(limits) > 1 else 500
    except ValueError:
        raise argparse.ArgumentTypeError("per_min and per_day must be integers") from None
    return key, per_minute, per_day


def _parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m vt_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--key", type=_key, action="append", default=[], metavar="KEY[:per_min[:per_day]]")
    parser.add_argument("--queued-seconds", type=float, default=defaults.queued_seconds)
    parser.add_argument("--progress-seconds", type=float, default=defaults.progress_seconds)
    parser.add_argument("--minute-seconds", type=float, default=defaults.minute_seconds)
    parser.add_argument("--day-seconds", type=float, default=defaults.day_seconds)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--transient-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    config = EmulatorConfig(args.queued_seconds, args.progress_seconds, args.minute_seconds, args.day_seconds)
    emulator = Emulator(config)
    for key, per_minute, per_day in args.key:
        emulator.add_key(key, per_minute=per_minute, per_day=per_day)
    emulator.set_faults(latency_ms=args.latency_ms, transient_rate=args.transient_rate, drop_rate=args.drop_rate)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator.start(args.host, args.port)
    print(emulator.url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
