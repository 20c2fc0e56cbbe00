"""Adapters: concrete implementations of the exchange's ports for the outside world."""
