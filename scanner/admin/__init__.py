"""/api/admin: what only an administrator reads (the audit trail)."""
