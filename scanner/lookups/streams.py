"""GET /api/stream_ioc and /api/stream/bulk/{id}: a lookup or a bulk job followed live, as
Server-Sent Events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from ..auth.access import current_token, current_user, login_required
from ..extensions import db
from ..streams import slots, sse
from . import bulk, presenters, services
from .models import JOB_FINISHED, BulkJob, Lookup
from .routes import lookup_answer
from .schemas import StreamIocArgsSchema

blp = Blueprint("lookup_streams", __name__, url_prefix="/api", description="Live progress of lookups and bulk jobs")


def lookup_snapshot(lookup_id: uuid.UUID, show_raw: bool = False) -> Callable[[], sse.Snapshot]:
    def read() -> sse.Snapshot:
        lookup = db.session.get(Lookup, lookup_id, populate_existing=True)
        finished = lookup.status in ("completed", "failed")
        data = presenters.lookup_result(lookup, services.raw_report(lookup) if show_raw and finished else None)
        # Not `attempts`: every step a worker takes counts one until it ends well, which a watcher
        # has nothing to see of.
        return (lookup.status, lookup.stage, lookup.provider_status, lookup.polls), data

    return read


def lookup_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in ("completed", "failed")


def bulk_snapshot(job_id: uuid.UUID) -> Callable[[], sse.Snapshot]:
    def read() -> sse.Snapshot:
        job = db.session.get(BulkJob, job_id, populate_existing=True)
        data = presenters.job_counts(job, bulk.progress(job.id))
        return tuple(sorted(data.items())), data

    return read


def bulk_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in JOB_FINISHED


@blp.route("/stream_ioc")
class StreamIoc(MethodView):
    decorators = [login_required]

    @blp.arguments(StreamIocArgsSchema, location="query", unknown=RAISE)
    @blp.doc(responses=sse.EVENT_STREAM_DOC)
    def get(self, args: dict):
        """Check an indicator and stream its progress: `lookup`, `status` at each change, then `complete`"""
        user = current_user()
        slot = slots.acquire(user.id)
        try:
            checked = services.check(user, args["ioc"], args["force_refresh"])
            lookup_answer(checked)
        except Exception:
            db.session.rollback()
            slots.release(slot)
            raise
        lookup = checked.lookup
        started = {"lookup_id": lookup.id, "ioc": lookup.ioc, "ioc_type": lookup.ioc_type, "status": lookup.status}
        snapshot = lookup_snapshot(lookup.id, args["show_raw"])
        token = current_token()

        def body():
            yield sse.sse("lookup", started)
            yield from sse.follow("lookup", lookup.id, snapshot, lookup_is_final, "status", token, slot)

        return sse.response(body(), slot)


@blp.route("/stream/bulk/<id:job_id>")
class StreamBulk(MethodView):
    decorators = [login_required]

    @blp.doc(responses=sse.EVENT_STREAM_DOC)
    def get(self, job_id: str):
        """Follow a bulk job: `progress` at each change, then `complete`"""
        user = current_user()
        job = bulk.get_job(user, job_id)
        slot = slots.acquire(user.id)
        body = sse.follow("bulk", job.id, bulk_snapshot(job.id), bulk_is_final, "progress", current_token(), slot)
        return sse.response(body, slot)
