"""FHIR operations ($name)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/fhir", tags=["FHIR operations"])
