"""Benchmarks of safeloss: `python benchmarks/run.py`, see README.md."""
