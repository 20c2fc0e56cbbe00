"""Tables, the resource repository and its search indexes."""
