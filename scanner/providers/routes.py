from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from ..auth.access import roles_required
from . import metrics
from .health import health
from .performance import performance
from .schemas import HealthSchema, MetricsArgsSchema, MetricsSchema, PerformanceSchema

blp = Blueprint("providers", __name__, url_prefix="/api/providers", description="Health, metrics and performance")


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
    def get(self):
        """Health of the database, Redis and VirusTotal, one status each"""
        return health()


@blp.route("/metrics")
class Metrics(MethodView):
    @roles_required("admin")
    @blp.arguments(MetricsArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, MetricsSchema)
    @blp.alt_response(403, description="Not an admin")
    def get(self, args):
        """Requests of every web process by status and route template (admins only)"""
        return metrics.summary(args["hours"])


@blp.route("/performance")
class Performance(MethodView):
    @roles_required("admin")
    @blp.response(200, PerformanceSchema)
    @blp.alt_response(403, description="Not an admin")
    def get(self):
        """This machine's and this web process's memory and CPU against the thresholds (admins only)"""
        return performance()
