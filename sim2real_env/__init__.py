"""Gymnasium side of sim2real-duckietown: the headless simulator env and its wrappers.

Importing this package imports nothing heavy (no Gymnasium, no old ``gym``, no simulator): its
gym-free modules (``names``, ``checks``, ``errors``, ``provenance``, ``video``, ``frames``, ...)
are the bottom layer that ``generators`` builds on. ``sim2real/Duckietown-v0`` is registered with
Gymnasium as soon as both are loaded::

    import gymnasium, sim2real_env          # registers it (Gymnasium already loaded: free)
    env = gymnasium.make("sim2real/Duckietown-v0", map_name="small_loop")

Gymnasium 1.x has no plugin entry points (removed in 1.0), so registration is an import side
effect, as for every Gymnasium env package: this package registers when Gymnasium is already
imported, and ``sim2real_env.env`` and ``sim2real_env.wrappers`` (and everything that imports
them: ``make``, ``preprocess``, ``vector``, ``domains``) always register. ``register_envs()``
does it explicitly.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
ENV_ID = "sim2real/Duckietown-v0"

if TYPE_CHECKING:
    from sim2real_env.env import DuckietownEnv, EnvConfig

__all__ = ["ENV_ID", "DuckietownEnv", "EnvConfig", "__version__", "register_envs"]


def register_envs() -> None:
    """Register ``sim2real/Duckietown-v0`` with Gymnasium (idempotent; imports Gymnasium, not the simulator)."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="sim2real_env.env:DuckietownEnv")


def _silence_old_gym_notice() -> None:
    """Keep old ``gym``'s "unmaintained" notice off stderr, without importing ``gym``.

    The simulator needs old ``gym`` (and stable-baselines3 imports it whenever it is installed);
    on import it prints a notice looked up in ``gym_notices`` by version. Nothing here can act on
    it, so the table is emptied before ``gym`` is first imported.
    """
    if "gym" in sys.modules:
        return
    with contextlib.suppress(ImportError):
        from gym_notices import notices

        notices.notices.clear()


_silence_old_gym_notice()
if "gymnasium" in sys.modules:
    register_envs()


def __getattr__(name: str) -> Any:
    if name in ("DuckietownEnv", "EnvConfig"):
        from sim2real_env import env

        return getattr(env, name)
    raise AttributeError(f"module 'sim2real_env' has no attribute {name!r}")
