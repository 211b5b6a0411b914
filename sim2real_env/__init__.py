"""Gymnasium side of sim2real-duckietown: the headless simulator env and its wrappers.

Importing this package registers ``sim2real/Duckietown-v0`` (the simulator itself is imported
only when an env is built)::

    import gymnasium, sim2real_env
    env = gymnasium.make("sim2real/Duckietown-v0", map_name="small_loop")
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import TYPE_CHECKING, Any

import gymnasium

__version__ = "0.1.0"
ENV_ID = "sim2real/Duckietown-v0"

if "gym" not in sys.modules:
    # The simulator depends on old ``gym``, which prints an "unmaintained" banner to stderr on
    # import (stable-baselines3 imports it too when installed). Import it once, quietly.
    with contextlib.suppress(ImportError), contextlib.redirect_stderr(io.StringIO()):
        import gym  # noqa: F401

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="sim2real_env.env:DuckietownEnv")

if TYPE_CHECKING:
    from sim2real_env.env import DuckietownEnv, EnvConfig

__all__ = ["ENV_ID", "DuckietownEnv", "EnvConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("DuckietownEnv", "EnvConfig"):
        from sim2real_env import env

        return getattr(env, name)
    raise AttributeError(f"module 'sim2real_env' has no attribute {name!r}")
