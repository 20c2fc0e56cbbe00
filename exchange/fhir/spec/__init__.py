"""Data generated from HL7's R4 package (search parameters, required bindings), and
the generators that write it."""
