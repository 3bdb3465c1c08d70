"""Benchmarks of the generation engine; see bench/README.md."""
