"""Imports every feature's models so the metadata (and Alembic) sees all tables."""

from .api_keys.models import ApiKey  # noqa: F401
from .audit.models import AuditEvent  # noqa: F401
from .auth.models import RefreshToken, RevokedToken, User  # noqa: F401
from .files.models import File  # noqa: F401
from .lookups.models import BulkItem, BulkJob, HashAlias, Lookup, LookupNote  # noqa: F401
from .metrics.models import CounterTotal  # noqa: F401
from .providers.models import RequestCount  # noqa: F401
from .scans.models import EngineResult, Scan, ScanFlight  # noqa: F401
from .streams.models import StreamSlot  # noqa: F401
from .system.models import WorkerHeartbeat  # noqa: F401
from .virustotal.models import IndicatorReport  # noqa: F401
