"""Endpoint write rules (placeholder until the address checks land)."""
