"""Generated data from HL7's FHIR R4 package, and the generators that write it."""
