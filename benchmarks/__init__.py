"""Runnable benchmarks; results in benchmarks/results/."""
