"""The exchange's HTTP faces: the clinic FHIR REST API and the SMART token endpoint."""
