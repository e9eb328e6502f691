"""A VirusTotal API v3 emulator over real HTTP: `Emulator().start()`, or
`python -m vt_emulator --port 8765`."""

from .engines import EICAR
from .server import Emulator
from .state import EmulatorConfig, Faults, LogEntry

__all__ = ["EICAR", "Emulator", "EmulatorConfig", "Faults", "LogEntry"]
