"""Generators (issue 3)."""
