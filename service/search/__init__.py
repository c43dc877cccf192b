"""FHIR search: parameter definitions, index extraction, query parsing, and compilation to
SQLAlchemy conditions over the index tables (no HTTP; executing them is storage's job)."""
