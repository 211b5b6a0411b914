"""CUT and FastCUT (Park et al. 2020): one generator, PatchNCE between input and output patches."""
