"""Wraparound: a FHIR R4 referral hub for London's HIV clinics and their voluntary-sector partners."""
