"""FHIR on the wire: release choice, validation, errors, search, bundles."""
