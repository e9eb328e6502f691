"""HTTP for indicator lookups (seed 002)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from ..auth.access import current_user, login_required, signed_in_user
from ..extensions import db
from ..json_answers import sent, written
from ..request_args import links
from . import presenters, services, tasks
from .schemas import (
    CheckIocSchema,
    LookupDetailSchema,
    LookupHistoryArgsSchema,
    LookupHistoryPageSchema,
    LookupResultSchema,
    NoteInSchema,
    NoteOutSchema,
    ShowRawArgsSchema,
)

blp = Blueprint(
    "lookups", __name__, url_prefix="/api", description="Indicator lookups: hashes, URLs, domains and IP addresses"
)

PENDING_DOC = "202: the lookup is pending (VirusTotal quota spent, or an analysis running); a worker finishes it"


def lookup_answer(checked: services.Checked) -> tuple[int, dict[str, str]]:
    """Commit the lookup; a pending one goes to a worker. Returns its status code and headers."""
    lookup_id, pending = checked.lookup.id, checked.pending  # read before the commit expires them
    if db.session.registry.has():  # an answer from the cache made no session: its row is written
        db.session.commit()
    if not pending:
        return 200, {}
    tasks.enqueue_lookup(lookup_id, checked.delay or 0.0)
    return 202, {"Location": f"/api/lookup/{lookup_id}"}


# -- lookups ----------------------------------------------------------------------------------


LOOKUP_OPERATIONS = ("GET /api/lookup/{lookup_id}", "POST /api/lookup/{lookup_id}/notes")


@blp.route("/check_ioc")
class CheckIoc(MethodView):
    decorators = [login_required]

    @blp.arguments(CheckIocSchema)
    @blp.doc(**links(200, "lookup_id", "/lookup_id", *LOOKUP_OPERATIONS))
    @blp.doc(**links(202, "lookup_id", "/lookup_id", *LOOKUP_OPERATIONS))
    @blp.response(200, LookupResultSchema)
    @blp.alt_response(202, schema=LookupResultSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """Check an indicator: from the cache, our stored report, or VirusTotal"""
        checked = services.check(signed_in_user(), args["ioc"], args["force_refresh"])
        raw = services.raw_report(checked.lookup) if args["show_raw"] else None
        # The answer is the row as written: built before the commit, it needs no read back; and
        # written as its schema would write it, without the dump (scanner/json_answers.py).
        answer = written(presenters.lookup_result(checked.lookup, raw))
        status, headers = lookup_answer(checked)
        return sent(answer), status, headers


@blp.route("/lookup/<id:lookup_id>")
class LookupById(MethodView):
    decorators = [login_required]

    @blp.arguments(ShowRawArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, LookupDetailSchema)
    def get(self, args: dict, lookup_id: str):
        """A lookup with its provider results and notes (its owner or an admin)"""
        lookup = services.get_lookup(current_user(), lookup_id)
        return presenters.lookup_detail(lookup, services.raw_report(lookup) if args["show_raw"] else None)


@blp.route("/lookup/<id:lookup_id>/notes")
class LookupNotes(MethodView):
    decorators = [login_required]

    @blp.arguments(NoteInSchema)
    @blp.response(201, NoteOutSchema)
    def post(self, args: dict, lookup_id: str):
        """Add a note to a lookup"""
        note = services.add_note(current_user(), lookup_id, args["text"])
        db.session.commit()
        return presenters.note_view(note)


@blp.route("/lookups")
class LookupHistory(MethodView):
    decorators = [login_required]

    @blp.arguments(LookupHistoryArgsSchema, location="query", unknown=RAISE, as_kwargs=False)
    @blp.response(200, LookupHistoryPageSchema)
    def get(self, query: services.LookupQuery):
        """Your lookups, filtered (type, verdict, status, indicator, dates), sorted and paged"""
        page = services.history_page(signed_in_user().id, query)
        return {"lookups": [presenters.history_row(row) for row in page["lookups"]], "pagination": page["pagination"]}
