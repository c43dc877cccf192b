"""Referral business rules (consent, Task lifecycle, patient identity) as pure functions over FHIR JSON."""
