"""Benchmarks behind `make bench`: one module per figure, shared helpers in common.py."""
