"""FHIR search: parameter definitions, index extraction and query parsing (no HTTP, no SQL)."""
