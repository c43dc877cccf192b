"""FHIR R4 plumbing: the model import surface and JSON handling."""
