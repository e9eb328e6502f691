from marshmallow import Schema, fields, validate


class HealthComponentSchema(Schema):
    status = fields.String()
    message = fields.String()


class ProvidersSchema(Schema):
    virustotal = fields.Nested(HealthComponentSchema)


class ComponentsSchema(Schema):
    database = fields.Nested(HealthComponentSchema)
    redis = fields.Nested(HealthComponentSchema)
    providers = fields.Nested(ProvidersSchema)


class HealthSchema(Schema):
    status = fields.String(metadata={"enum": ["ok", "degraded", "unavailable"]})
    timestamp = fields.String()
    components = fields.Nested(ComponentsSchema)


class MetricsArgsSchema(Schema):
    hours = fields.Integer(
        load_default=24,
        validate=validate.Range(min=1, max=24 * 365),
        metadata={"description": "Hours to look back, the current hour included (kept: METRICS_RETENTION_HOURS)"},
    )


class MetricsSchema(Schema):
    period_hours = fields.Integer()
    timestamp = fields.String()
    total_requests = fields.Integer()
    requests_by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    requests_by_endpoint = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "By route template"}
    )
    error_rate = fields.Float(metadata={"description": "Percent of requests answered 400 or above"})


class ThresholdSchema(Schema):
    percent = fields.Float()
    threshold_exceeded = fields.Boolean()


class SystemSchema(Schema):
    memory = fields.Nested(ThresholdSchema)
    cpu = fields.Nested(ThresholdSchema)


class ProcessMemorySchema(Schema):
    rss = fields.Integer()
    threshold_exceeded = fields.Boolean()


class ProcessSchema(Schema):
    memory = fields.Nested(ProcessMemorySchema)
    cpu = fields.Float()


class SystemMetricsSchema(Schema):
    system = fields.Nested(SystemSchema)
    process = fields.Nested(ProcessSchema)


class PerformanceHealthSchema(Schema):
    status = fields.String(metadata={"enum": ["healthy", "degraded"]})
    issues = fields.List(fields.String())
    recommendations = fields.List(fields.String())


class PerformanceSchema(Schema):
    timestamp = fields.String()
    system_metrics = fields.Nested(SystemMetricsSchema)
    performance_health = fields.Nested(PerformanceHealthSchema)
