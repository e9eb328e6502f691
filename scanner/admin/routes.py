from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from .. import audit
from ..audit.services import Filters, search
from ..auth.access import current_user, roles_required
from ..extensions import db
from .schemas import AuditPageSchema, AuditQueryArgsSchema

blp = Blueprint("admin", __name__, url_prefix="/api/admin", description="Administration")


@blp.route("/audit")
class Audit(MethodView):
    @roles_required("admin")
    @blp.arguments(AuditQueryArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, AuditPageSchema)
    @blp.alt_response(403, description="Not an admin")
    def get(self, args):
        """The audit trail, newest first, filtered and paginated (admins only)"""
        page_no, per_page = args.pop("page"), args.pop("per_page")
        page = search(Filters(**args), page_no, per_page)
        audit.record("admin.read_audit", actor=current_user(), details={"filters": ",".join(sorted(args)) or None})
        db.session.commit()
        return {
            "events": page.items,
            "pagination": {
                "page": page.page,
                "per_page": page.per_page,
                "total_pages": page.total_pages,
                "total_items": page.total_items,
            },
        }
