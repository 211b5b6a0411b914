"""Agents: the expert controller, and later PPO and behaviour cloning."""
