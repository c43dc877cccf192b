"""POST to the base: batch and transaction Bundles."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/fhir", tags=["FHIR batch/transaction"])
