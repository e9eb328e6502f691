from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import audit
from ..auth.access import current_user, login_required
from ..extensions import db
from ..rate_limits import limiter
from ..request_args import links
from ..request_parser import NoQueryArgsSchema
from . import services
from .schemas import (
    ApiKeyCreateSchema,
    ApiKeyDeletedSchema,
    ApiKeyEnvelopeSchema,
    ApiKeyListSchema,
    ApiKeyUpdateSchema,
    ApiKeyValidateSchema,
    ApiKeyValidationSchema,
)

blp = Blueprint("api_keys", __name__, url_prefix="/api/keys", description="VirusTotal API keys")

# Each check of a key value is a request to VirusTotal; a caller cannot turn us into a key tester.
key_checks = limiter.limit(
    lambda: current_app.config["KEY_CHECK_RATE_LIMIT"], scope="api-key-checks", methods=["POST", "PUT"]
)


@blp.route("/")
class ApiKeys(MethodView):
    decorators = [key_checks, login_required]

    @blp.arguments(NoQueryArgsSchema, location="query")
    @blp.response(200, ApiKeyListSchema)
    def get(self, _args):
        """List your API keys with their usage"""
        return {"api_keys": [services.describe(key) for key in services.list_keys(current_user())]}

    @blp.arguments(ApiKeyCreateSchema)
    @blp.doc(**links(201, "key_id", "/api_key/id", *(f"{m} /api/keys/{{key_id}}" for m in ("GET", "PUT", "DELETE"))))
    @blp.response(201, ApiKeyEnvelopeSchema)
    @blp.alt_response(400, description="Missing or invalid fields, or a key VirusTotal rejects")
    @blp.alt_response(409, description="You already stored this key")
    def post(self, data):
        """Add an API key (checked with VirusTotal, stored encrypted)"""
        with audit.failures_recorded("key.create", actor=current_user(), target_type="api_key"):
            key = services.create_key(current_user(), data)
        audit.record("key.create", actor=current_user(), target_type="api_key", target_id=key.id)
        db.session.commit()
        return {"message": "API key created successfully", "api_key": services.describe(key)}


@blp.route('/<id("validate"):key_id>')
class ApiKeyById(MethodView):
    decorators = [key_checks, login_required]

    @blp.response(200, ApiKeyEnvelopeSchema)
    @blp.alt_response(400, description="Invalid API key ID format")
    @blp.alt_response(404, description="API key not found")
    def get(self, key_id: str):
        """Get one of your API keys with its usage"""
        return {"api_key": services.describe(services.get_key(current_user(), key_id))}

    @blp.arguments(ApiKeyUpdateSchema)
    @blp.response(200, ApiKeyEnvelopeSchema)
    @blp.alt_response(400, description="No update data, invalid fields or ID, or a key VirusTotal rejects")
    @blp.alt_response(404, description="API key not found")
    @blp.alt_response(409, description="You already stored this key")
    def put(self, data, key_id: str):
        """Update an API key (a new key value is checked with VirusTotal)"""
        changed = {"fields": ",".join(sorted(data))}
        with audit.failures_recorded(
            "key.update", actor=current_user(), target_type="api_key", target_id=key_id, details=changed
        ):
            key = services.update_key(current_user(), key_id, data)
        audit.record("key.update", actor=current_user(), target_type="api_key", target_id=key.id, details=changed)
        db.session.commit()
        return {"message": "API key updated successfully", "api_key": services.describe(key)}

    @blp.response(200, ApiKeyDeletedSchema)
    @blp.alt_response(400, description="Invalid API key ID format")
    @blp.alt_response(404, description="API key not found")
    def delete(self, key_id: str):
        """Delete an API key"""
        with audit.failures_recorded("key.delete", actor=current_user(), target_type="api_key", target_id=key_id):
            services.delete_key(current_user(), key_id)
        audit.record("key.delete", actor=current_user(), target_type="api_key", target_id=key_id)
        db.session.commit()
        return {"message": "API key deleted successfully"}


@blp.route("/validate")
class ApiKeyValidation(MethodView):
    decorators = [key_checks, login_required]

    @blp.arguments(ApiKeyValidateSchema)
    @blp.response(200, ApiKeyValidationSchema)
    @blp.alt_response(400, description="API key is required")
    @blp.alt_response(429, description="The key's VirusTotal quota has no request left for the check now")
    @blp.alt_response(502, description="VirusTotal could not be reached")
    def post(self, data):
        """Check an API key with VirusTotal without storing it"""
        with audit.failures_recorded("key.validate", actor=current_user()):
            check = services.validate_value(current_user(), data["key_value"])
        audit.record("key.validate", actor=current_user(), details={"valid": check.valid})
        db.session.commit()
        return {"valid": check.valid, "message": check.message}
