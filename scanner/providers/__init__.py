"""/api/providers: seed 002's monitoring endpoints (health, request metrics, performance)."""
