"""Importing this module registers every shipped generator method's model class.

:data:`generators.registry.METHODS` imports it on its first lookup; each model module registers
its class with :func:`generators.registry.register_method`. A new method adds one line here (and
one in :mod:`generators.method_trainers` for its trainer).
"""

from __future__ import annotations

import generators.baselines.model
import generators.cut.model
import generators.cyclegan.model
import generators.nst.model
import generators.stn_unet.model
import generators.student.model
import generators.unit.model  # noqa: F401
