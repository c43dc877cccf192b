"""The audit trail: an AuditEvent for every access, written in the same transaction."""
