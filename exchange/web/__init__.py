"""Pages for people: the resident portal and compliance console will live here."""
