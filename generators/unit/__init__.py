"""UNIT (Liu et al. 2017): unsupervised translation through a shared latent space."""
