"""CycleGAN (Zhu et al. 2017): unpaired sim <-> real translation with cycle consistency."""
