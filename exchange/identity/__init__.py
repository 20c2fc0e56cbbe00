"""Who is asking: registered clients, SMART Backend Services tokens, resident sessions."""
