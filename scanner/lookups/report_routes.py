"""HTTP for seed 000's cached VirusTotal reports: a thin adapter over the indicator lookups."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..auth.access import current_user, login_required
from ..errors import NotFound, ProviderError
from . import services
from .routes import PENDING_DOC, lookup_answer
from .schemas import EndpointReportInSchema, EndpointReportOutSchema

blp = Blueprint(
    "virustotal_reports",
    __name__,
    description="Seed 000's cached VirusTotal reports (a thin adapter over the indicator lookups)",
)


def _endpoint_report(args: dict, refresh: bool):
    vt_type = services.endpoint_type(args["endpoint_type"])
    checked = services.check(current_user(), args["endpoint_value"], force_refresh=refresh, vt_type=vt_type)
    status, headers = lookup_answer(checked)
    lookup = checked.lookup
    if lookup.status == "failed":
        raise ProviderError(lookup.error or "VirusTotal could not answer", details={"lookup_id": str(lookup.id)})
    if lookup.provider_status == "not_found":
        raise NotFound(f"VirusTotal has no report for this {vt_type}", details={"lookup_id": str(lookup.id)})
    body = {
        "endpoint_type": args["endpoint_type"].strip().lower(),
        "endpoint_value": lookup.ioc,
        "report": services.raw_report(lookup),
        "cached": lookup.source in ("cache", "database"),
        "lookup_id": lookup.id,
        "status": lookup.status,
    }
    return body, status, headers


@blp.route("/get_virustotal_report/")
class GetVirusTotalReport(MethodView):
    decorators = [login_required]

    @blp.arguments(EndpointReportInSchema)
    @blp.response(200, EndpointReportOutSchema)
    @blp.alt_response(202, schema=EndpointReportOutSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """VirusTotal's report for a domain, IP, file hash or URL: cache, then database, then VirusTotal"""
        return _endpoint_report(args, refresh=False)


@blp.route("/refresh_virustotal_report/")
class RefreshVirusTotalReport(MethodView):
    decorators = [login_required]

    @blp.arguments(EndpointReportInSchema)
    @blp.response(200, EndpointReportOutSchema)
    @blp.alt_response(202, schema=EndpointReportOutSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """Fetch the report from VirusTotal again and update the cache and database"""
        return _endpoint_report(args, refresh=True)
