"""Fanning episodes out over Ray workers: ``--workers N`` and ``--ray-address`` on ``harvest`` and ``evaluate``.

With ``--workers 1`` (the default) and no address, nothing here runs: the commands stay serial.
Otherwise each worker is a Ray actor that builds its simulator once and reuses it for every
episode it is given (a Simulator costs ~35 MiB that upstream never gives back, and seconds to
build); episodes are independent of what ran before them in the same simulator (each one is
reset from its own seed), so the results are the serial run's, bit for bit.

Where the workers run: ``--ray-address auto`` or ``HOST:PORT`` (or ``RAY_ADDRESS``) joins a
running Ray cluster; otherwise a local Ray is started for the command with the machine's cores
and stopped at the end. Paths (the output folder aside, which only the driver writes) must be
readable on every node: agent folders and checkpoints, and this package installed there.

Threads: every worker asks Ray for ``threads`` CPUs and pins torch, OpenMP, ONNX Runtime and the
software renderer (Mesa llvmpipe) to that many threads, so ``workers x threads`` never exceeds
the cores Ray hands out on a node. Locally ``threads = max(1, cores // workers)``; on a cluster
1, and Ray places as many workers on each node as it has cores.

A worker that dies (killed, out of memory, its node lost) is restarted by Ray and its episode run
again (``max_restarts`` / ``max_task_retries``); the driver writes an episode only once all of it
has arrived, so a lost worker loses at most the episode it was on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sim2real_env.errors import ConfigError

#: How often Ray restarts a dead worker, and re-runs the episode it was on, before the command fails.
RETRIES = 3
#: Environment variables that fix a worker's thread count (torch/MKL/OpenMP, ONNX Runtime via
#: OpenMP-free intra-op threads set in code, the llvmpipe rasterizer).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LP_NUM_THREADS")


@dataclass(frozen=True)
class RayOptions:
    """``workers``: concurrent episodes; ``address``: a Ray cluster (``auto``, ``HOST:PORT``) or None.

    ``RayOptions()`` is the serial run. Example::

        harvest(out, config, ray=RayOptions(workers=4))                    # local Ray, 4 workers
        evaluate(config, ray=RayOptions(workers=64, address="auto"))       # an existing cluster
    """

    workers: int = 1
    address: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"--workers must be an integer >= 1, got {self.workers!r}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ConfigError(f"--ray-address must be 'auto', HOST:PORT or ray://HOST:PORT, got {self.address!r}")

    @property
    def enabled(self) -> bool:
        """Whether the work goes to Ray (more than one worker, or a cluster named)."""
        return self.workers > 1 or self.address is not None

    def threads(self) -> int:
        """Threads per worker: the local cores shared out, or 1 on a cluster."""
        if self.address is not None:
            return 1
        return max(1, (os.cpu_count() or 1) // self.workers)


def pin_threads(threads: int) -> None:
    """Pin this process's torch threads (the environment variables are set when the worker starts)."""
    import torch

    torch.set_num_threads(threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


class RaySession:
    """``ray.init`` for one command (unless Ray is already up in this process), ``ray.shutdown`` after."""

    def __init__(self, options: RayOptions) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is a dependency
            raise ValueError("--workers/--ray-address need Ray: pip install 'ray[default]'") from exc
        self.ray = ray
        self.options = options
        self.threads = options.threads()
        self.owned = False

    def __enter__(self) -> RaySession:
        if not self.ray.is_initialized():
            env_vars = dict.fromkeys(THREAD_VARIABLES, str(self.threads))
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "runtime_env": {"env_vars": env_vars},
            }
            if self.options.address is not None:
                kwargs["address"] = self.options.address
            elif "RAY_ADDRESS" not in os.environ:
                kwargs["num_cpus"] = os.cpu_count() or 1
            self.ray.init(**kwargs)
            self.owned = True
        if self.options.address is None and self.options.workers > (os.cpu_count() or 1):
            print(f"ray: {self.options.workers} workers on {os.cpu_count()} cores; at most one per core runs at a time")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.ray.shutdown()

    def actors(self, cls: type, *args: Any) -> list[Any]:
        """``workers`` restartable actors of ``cls(*args, threads)``, each holding ``threads`` CPUs."""
        remote: Any = self.ray.remote(num_cpus=self.threads, max_restarts=RETRIES, max_task_retries=RETRIES)(cls)
        return [remote.remote(*args, self.threads) for _ in range(self.options.workers)]

    def map_unordered(self, actors: list[Any], call: Callable[[Any, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """Results of ``call(actor, item)`` for every item, as they finish (Ray's ``ActorPool``)."""
        from ray.util import ActorPool

        return ActorPool(actors).map_unordered(call, list(items))
