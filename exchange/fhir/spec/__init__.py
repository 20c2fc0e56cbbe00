"""What is generated from HL7's own R4 definitions, and the generators that make it."""
