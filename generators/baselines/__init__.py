"""Trivial sim->real baselines every learned translator is reported next to: identity and colour transfer."""
