"""The consent domain: what residents said, as FHIR Consent, and its view for the policies."""
