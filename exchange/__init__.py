"""A consent-driven FHIR health data exchange for a future community."""
