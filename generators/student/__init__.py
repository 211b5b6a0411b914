"""A small real-time student distilled from a slow teacher translator (``sim2real distill``)."""
