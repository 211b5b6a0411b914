"""The simulator's maps, looked up by name without importing the simulator."""

from __future__ import annotations

from functools import lru_cache
from importlib import util
from pathlib import Path

from sim2real_env.names import resolve_name

#: Closed loops without intersections or obstacles: what lane following is trained and judged on.
LANE_FOLLOWING_MAPS: tuple[str, ...] = ("loop_empty", "small_loop", "small_loop_cw", "zigzag_dists")
DEFAULT_MAP = "loop_empty"


@lru_cache(maxsize=1)
def available_maps() -> tuple[str, ...]:
    """Names of the maps shipped with ``duckietown-world`` (``<data>/gd1/maps/*.yaml``)."""
    spec = util.find_spec("duckietown_world")
    if spec is None or spec.origin is None:
        raise RuntimeError("duckietown-world is not installed; run the set-up command from the README")
    maps_dir = Path(spec.origin).parent / "data" / "gd1" / "maps"
    return tuple(sorted(p.stem for p in maps_dir.glob("*.yaml")))


def resolve_map(name: str) -> str:
    """Return ``name`` if it is a known map, else raise ``ValueError`` naming the nearest maps."""
    return resolve_name("Duckietown map", name, available_maps())
