from __future__ import annotations

from tests.lookups.conftest import start_web  # noqa: F401  the same gunicorn as the lookup streams
