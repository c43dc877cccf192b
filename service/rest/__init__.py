"""The FHIR RESTful interactions as domain operations (no HTTP here)."""
