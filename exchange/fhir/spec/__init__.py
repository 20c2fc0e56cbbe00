"""What is generated from HL7's own R4 definitions (search parameters, required bindings), and the generators that make it."""
