from marshmallow import Schema, fields, validate

from ..audit.services import ACTIONS, OUTCOMES
from ..db_types import SQL_INT_MAX


class AuditQueryArgsSchema(Schema):
    action = fields.String(
        validate=validate.Length(max=64),
        metadata={"description": 'An action or a family ("key" for every key.* action): ' + ", ".join(ACTIONS)},
    )
    actor_id = fields.UUID()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    target_id = fields.String(validate=validate.Length(max=64))
    since = fields.AwareDateTime(default_timezone=None, metadata={"description": "ISO 8601, inclusive"})
    until = fields.AwareDateTime(default_timezone=None, metadata={"description": "ISO 8601, exclusive"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditEventSchema(Schema):
    id = fields.UUID()
    created_at = fields.DateTime()
    actor_id = fields.UUID(allow_none=True)
    actor_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    outcome = fields.String()
    request_id = fields.String(allow_none=True)
    details = fields.Dict()


class AuditPaginationSchema(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total_pages = fields.Integer()
    total_items = fields.Integer()


class AuditPageSchema(Schema):
    events = fields.List(fields.Nested(AuditEventSchema))
    pagination = fields.Nested(AuditPaginationSchema)
