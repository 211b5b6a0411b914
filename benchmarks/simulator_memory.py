"""Process memory over evaluation cells, with and without the simulator pool.

``python -m benchmarks.simulator_memory [--cells-per-setting 2] [--no-pool]`` runs evaluate's
serial cell loop (the expert row in ``canonical``, ``randomized`` and ``real_proxy_camera`` on
``small_loop``, 2 episodes of 60 frames each, repeated ``--cells-per-setting`` times, as the rows of
an evaluation matrix repeat its domains) and prints the process RSS after every cell.
``--no-pool`` empties the pool after each cell, which is what happened before it existed: every
cell builds a new upstream Simulator and the old one is never freed.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

from agents.episodes import run_episode
from agents.evaluate import AgentVariant, EvalConfig, _expert_env
from agents.expert import PurePursuitExpert
from sim2real_env._compat import load_simulator
from sim2real_env.domains import load_domain
from sim2real_env.env import SIMULATORS

DOMAINS = ("canonical", "randomized", "real_proxy_camera")


def _expert_policy(env: Any) -> Callable[[np.ndarray], np.ndarray]:
    expert = PurePursuitExpert()
    return lambda obs: expert.act(env)


def run(cells_per_setting: int = 2, pool: bool = True) -> list[float]:
    """RSS (MiB) before the first cell and after each; prints one line per cell."""
    process = psutil.Process()
    load_simulator()  # imports count once, not against the first cell
    config = EvalConfig(
        name="simulator_memory", agents=(AgentVariant(name="expert", expert=True),), episode_frames=60, episodes=2
    )
    rss = [process.memory_info().rss / 2**20]
    print(f"before: {rss[0]:.0f} MiB", flush=True)
    started = time.perf_counter()
    for repeat in range(cells_per_setting):
        for name in DOMAINS:
            env = _expert_env(config, load_domain(name), "small_loop")
            policy = _expert_policy(env)
            for seed in config.seeds():
                run_episode(env, policy, seed)
            env.close()
            if not pool:
                SIMULATORS.clear()
            gc.collect()
            rss.append(process.memory_info().rss / 2**20)
            print(f"cell {repeat}/{name}: {rss[-1]:.0f} MiB", flush=True)
    print(
        f"{'pool' if pool else 'no pool'}: +{rss[-1] - rss[0]:.0f} MiB over {len(rss) - 1} cells, "
        f"{SIMULATORS.built} simulators built, {SIMULATORS.reused} reused, {time.perf_counter() - started:.1f} s"
    )
    return rss


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-per-setting", type=int, default=2)
    parser.add_argument("--no-pool", action="store_true")
    args = parser.parse_args()
    run(args.cells_per_setting, pool=not args.no_pool)


if __name__ == "__main__":
    main()
