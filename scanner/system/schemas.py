from marshmallow import Schema, fields


class LivenessSchema(Schema):
    status = fields.String()


class ComponentSchema(Schema):
    status = fields.String()
    message = fields.String()
    latency_ms = fields.Float()
    required = fields.Boolean()


class ReadinessSchema(Schema):
    status = fields.String()
    timestamp = fields.String()
    components = fields.Dict(keys=fields.String(), values=fields.Nested(ComponentSchema))
