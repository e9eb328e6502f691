"""The audit trail: who did what security-relevant thing, from where, to what, with what outcome.

Features call `record(...)` before they commit, so the event is written in the request's own
transaction and exists exactly when the action does. A refused action (a failed sign-in, a key
VirusTotal rejected) rolls its request back, so `record_failure(...)` writes in a transaction of
its own. Never pass a secret: events hold names and ids, not passwords, tokens or key values.
"""

from .services import failures_recorded, record, record_failure

__all__ = ["failures_recorded", "record", "record_failure"]
