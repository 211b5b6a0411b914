"""Real-to-canonical STN + U-Net (Lomnitz et al. 2020): undo geometric and photometric distortion."""
