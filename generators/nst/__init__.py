"""Neural style transfer (Gatys et al. 2016) and its feed-forward network (Johnson et al. 2016)."""
