"""Benchmarks: each prints a readable table and, with --json, one JSON object on its last line."""
