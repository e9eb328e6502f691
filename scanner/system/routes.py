from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..rate_limits import limiter
from .health import readiness
from .schemas import LivenessSchema, ReadinessSchema

blp = Blueprint("health", __name__, url_prefix="/api/health", description="Liveness and readiness")


@blp.route("")
class Health(MethodView):
    decorators = [limiter.exempt]

    @blp.doc(security=[])
    @blp.response(200, LivenessSchema)
    def get(self):
        """Liveness: the web process answers"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    decorators = [limiter.exempt]

    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="A required component is down")
    def get(self):
        """Readiness: database, cache, broker and workers, each with its status"""
        body, status = readiness()
        return body, status
