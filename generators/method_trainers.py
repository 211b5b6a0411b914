"""Importing this module registers every shipped generator method's trainer class.

Apart from :mod:`generators.methods` because the trainers pull in more (kornia, OpenCV,
discriminators) than loading a checkpoint for inference needs; :data:`generators.registry.TRAINERS`
imports it on its first lookup.
"""

from __future__ import annotations

import generators.baselines.train
import generators.cut.train
import generators.cyclegan.train
import generators.nst.train
import generators.stn_unet.train
import generators.student.train
import generators.unit.train  # noqa: F401
