"""The one quota gate: every client handed out here, right before each HTTP request, ends the
session's transaction and takes a token from its key's budget (KeyBusy, a QuotaExhausted, when
there is none).

No transaction stays open while VirusTotal answers: a call may last minutes (an upload), and an
open transaction would pin a connection `idle in transaction`, holding back vacuum, all that
time. Callers commit their writes before calling; what the gate ends holds only reads.

Whose key it is, which key to use and what to record about it belong to the keys
(`api_keys.selection`); this module knows a key only as its value and its budget.
"""

from __future__ import annotations

from flask import current_app

from ..errors import QuotaExhausted
from ..extensions import db
from . import quota
from .client import Refund, VirusTotalClient

__all__ = ["KeyBusy", "gated_client"]


class KeyBusy(QuotaExhausted):
    """This key's budget has no token now (raised by the client's quota gate)."""


def gated_client(key_value: str, budget: quota.Budget) -> VirusTotalClient:
    """A client for `key_value` whose every request first takes a token from `budget`."""

    def acquire() -> Refund:
        _end_transaction()
        wait, grant = quota.take(budget)
        if wait > 0:
            raise KeyBusy("This API key's VirusTotal quota is used up for now", retry_after=wait)
        return lambda: quota.give_back(budget, grant)

    cfg = current_app.config
    return VirusTotalClient(
        key_value,
        base_url=cfg["VT_API_URL"],
        timeout=(cfg["VT_CONNECT_TIMEOUT"], cfg["VT_READ_TIMEOUT"]),
        acquire=acquire,
    )


def _end_transaction() -> None:
    session = db.session()
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("commit before calling VirusTotal: no transaction may stay open across a call")
    session.commit()
