"""Benchmarks: each figure is printed with its floor, measured in the same run."""
