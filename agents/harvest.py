"""``sim2real harvest``: drive the expert (with action noise) and record a paired frame dataset.

Layout of ``OUT``::

    harvest.json               what was asked for (refuses to mix with a different request) + provenance
    canonical/<frame>.png      plain simulator frames (RGB)
    randomized/<frame>.png     same pose, domain-randomized appearance (RGB)
    segmentation/<frame>.png   class ids (single channel, see sim2real_env.segmentation.SegClass)
    episodes/<map>_<ep>.csv    one row per frame, written when the episode is complete
    manifest.csv               all episodes' rows, rebuilt at the end

Resumable: an episode is the unit of work; finished episodes (their CSV exists) are skipped and an
unfinished one is recorded again from its own seed, so a resumed dataset equals an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from agents.expert import ExpertConfig, PurePursuitExpert
from sim2real_env.checks import check_ints
from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError, Sim2RealError
from sim2real_env.make import build_env
from sim2real_env.maps import resolve_map
from sim2real_env.paired import PairedRenderer
from sim2real_env.provenance import provenance, remove_partial_files, write_json_atomic, write_text_atomic
from sim2real_env.rollout import rollout
from sim2real_env.video import write_png

if TYPE_CHECKING:
    from agents.cluster import RayOptions

MANIFEST_COLUMNS = (
    "frame",
    "map",
    "episode",
    "step",
    "lane_lateral_m",
    "lane_heading_rad",
    "in_lane",
    "speed_mps",
    "x_m",
    "z_m",
    "heading_rad",
    "expert_left",
    "expert_right",
    "applied_left",
    "applied_right",
)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class HarvestConfig:
    """What ``sim2real harvest`` records; two runs with equal configs write equal datasets."""

    maps: tuple[str, ...] = ("small_loop", "loop_empty")
    episodes_per_map: int = 2
    steps_per_episode: int = 300
    every: int = 5
    camera_width: int = 160
    camera_height: int = 120
    noise_std: float = 0.1
    seed: int = 0
    #: Render through the Duckiebot's calibrated fisheye lens (the real camera is not rectified),
    #: the segmentation labels through the same lens.
    distortion: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.maps, str) or not self.maps:
            raise ConfigError(f"HarvestConfig.maps must be a non-empty list of map names, got {self.maps!r}")
        object.__setattr__(self, "maps", tuple(resolve_map(m) for m in self.maps))
        repeated = sorted({m for m in self.maps if self.maps.count(m) > 1})
        if repeated:  # each episode would be recorded once but listed in the manifest twice
            raise ConfigError(f"HarvestConfig.maps names {', '.join(repeated)} more than once: {list(self.maps)}")
        check_ints(
            "HarvestConfig", self, {"episodes_per_map": (1, None), "steps_per_episode": (1, None), "every": (1, None)}
        )
        if isinstance(self.noise_std, bool) or not isinstance(self.noise_std, (int, float)):
            raise ConfigError(f"HarvestConfig.noise_std must be a number in [0, 1], got {self.noise_std!r}")
        if not 0.0 <= self.noise_std <= 1.0:
            raise ConfigError(f"HarvestConfig.noise_std must be in [0, 1], got {self.noise_std!r}")
        if not isinstance(self.distortion, bool):
            raise ConfigError(f"HarvestConfig.distortion must be true or false, got {self.distortion!r}")
        try:  # the env's own checks (camera size limits), before anything is written
            self.env_config(self.maps[0])
        except ValueError as exc:
            raise ConfigError(f"HarvestConfig: {exc}") from exc

    def env_config(self, map_name: str) -> EnvConfig:
        """The simulator settings of one map's episodes."""
        return EnvConfig(
            map_name=map_name,
            camera_width=self.camera_width,
            camera_height=self.camera_height,
            episode_length=self.steps_per_episode,
            distortion=self.distortion,
        )

    def to_json(self) -> dict[str, Any]:
        """The config as stored in ``harvest.json``."""
        return {**dataclasses.asdict(self), "maps": list(self.maps), "format_version": FORMAT_VERSION}

    def episode_seed(self, map_name: str, episode: int) -> int:
        """Seed of one episode, independent of which episodes ran before (so resuming is exact)."""
        digest = hashlib.sha256(f"{self.seed}/{map_name}/{episode}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class DatasetMismatchError(Sim2RealError, ValueError):
    """``OUT`` already holds a dataset recorded with a different configuration."""


def _check_out(out: Path, config: HarvestConfig) -> bool:
    """Whether ``out`` already holds this harvest (resume); refuses anything else. Writes nothing."""
    meta_path = out / "harvest.json"
    if out.exists() and not out.is_dir():
        raise DatasetMismatchError(f"--out {out} is a file, not a folder; choose another --out")
    wanted = config.to_json()
    if meta_path.exists():
        try:
            existing = json.loads(meta_path.read_text())["config"]
            if not isinstance(existing, dict):
                raise TypeError(f"'config' is a {type(existing).__name__}")
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetMismatchError(f"{meta_path} is not a harvest record ({exc}); choose another --out") from exc
        existing = {"distortion": False, **existing}  # harvests recorded before the option existed
        if existing != wanted:
            diff = {k: (existing.get(k), v) for k, v in wanted.items() if existing.get(k) != v}
            raise DatasetMismatchError(
                f"{out} holds a dataset recorded with different settings {diff} (existing, requested); "
                "choose another --out or repeat the original settings to resume"
            )
        return True
    if out.exists() and any(out.iterdir()):
        raise DatasetMismatchError(f"{out} exists and is not empty, but holds no harvest.json; choose another --out")
    return False


def harvest(out: Path, config: HarvestConfig, progress: bool = True, ray: RayOptions | None = None) -> dict[str, Any]:
    """Record the dataset described by ``config`` into ``out`` (resuming if it was started).

    Nothing is written until the request is checked and the first simulator is built, so a
    refused or failed start leaves ``out`` as it was and the corrected command can use it.
    ``ray``: record the episodes on Ray workers (:mod:`agents.cluster`); the dataset is the same,
    byte for byte.
    """
    out = Path(out)
    claimed = _check_out(out, config)
    if claimed:  # resuming: a harvest killed mid-write leaves a temporary file beside the frame it wrote
        remove_partial_files(out)
    frames_per_episode = len(range(0, config.steps_per_episode, config.every))
    total = frames_per_episode * config.episodes_per_map * len(config.maps)
    todo = [
        (m, ep)
        for m in config.maps
        for ep in range(config.episodes_per_map)
        if not (out / "episodes" / f"{m}_{ep:03d}.csv").exists()
    ]
    bar = tqdm(total=total, initial=total - frames_per_episode * len(todo), unit="frame", disable=not progress)
    envs: dict[str, tuple[Any, PairedRenderer]] = {}
    if ray is not None and ray.enabled:  # the same episodes on Ray workers; none is left for the loop below
        claimed = _harvest_on_ray(out, config, todo, claimed, bar, ray)
        todo = []
    for map_name, episode in todo:
        if map_name not in envs:
            env = build_env(config.env_config(map_name))
            envs[map_name] = (env, PairedRenderer(env, seed=config.seed))
        if not claimed:
            _claim(out, config)
            claimed = True
        env, renderer = envs[map_name]
        seed = config.episode_seed(map_name, episode)
        renderer.rng = np.random.default_rng(seed)
        rows = _record_episode(out, env, renderer, map_name, episode, seed, config, bar)
        _finish_episode(out, map_name, episode, rows)
    bar.close()
    for env, _ in envs.values():
        env.close()
    if not claimed:  # nothing to record (cannot happen for a valid config), still a complete dataset
        _claim(out, config)
    return _write_manifest(out, config)


def _finish_episode(out: Path, map_name: str, episode: int, rows: list[dict[str, Any]]) -> None:
    """Write the episode's CSV: the record that all its frames are on disk (written last)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "episodes" / f"{map_name}_{episode:03d}.csv", buffer.getvalue())


class _HarvestWorker:
    """A Ray actor: one simulator per map, reused for every episode it records.

    It writes nothing: an episode's frames and rows go back to the driver, which writes them
    and then the episode's CSV, so workers need no shared disk and a worker lost mid-episode
    leaves no trace of it.
    """

    def __init__(self, config: HarvestConfig, threads: int) -> None:
        from agents.cluster import pin_threads

        pin_threads(threads)
        self.config = config
        self.envs: dict[str, tuple[Any, PairedRenderer]] = {}

    def episode(self, map_name: str, episode: int) -> tuple[str, int, list[dict[str, Any]], list[tuple[str, Any]]]:
        """Record one episode; returns ``(map, episode, rows, [(relative PNG path, image), ...])``."""
        if map_name not in self.envs:
            env = build_env(self.config.env_config(map_name))
            self.envs[map_name] = (env, PairedRenderer(env, seed=self.config.seed))
        env, renderer = self.envs[map_name]
        seed = self.config.episode_seed(map_name, episode)
        renderer.rng = np.random.default_rng(seed)
        frames: list[tuple[str, Any]] = []

        def keep(path: Path, image: np.ndarray) -> None:
            frames.append((path.as_posix(), np.array(image)))

        rows = _record_episode(Path(), env, renderer, map_name, episode, seed, self.config, tqdm(disable=True), keep)
        return map_name, episode, rows, frames


def _harvest_on_ray(
    out: Path, config: HarvestConfig, todo: list[tuple[str, int]], claimed: bool, bar: Any, options: RayOptions
) -> bool:
    """Record ``todo`` on Ray workers; the driver writes each episode once all of it has arrived."""
    from agents.cluster import RaySession

    if not todo:  # a finished dataset: no need to start Ray
        return claimed

    with RaySession(options) as session:
        actors = session.actors(_HarvestWorker, config)
        for map_name, episode, rows, frames in session.map_unordered(
            actors, lambda actor, item: actor.episode.remote(*item), todo
        ):
            if not claimed:  # the first simulator was built: now the folder is ours
                _claim(out, config)
                claimed = True
            for relative, image in frames:
                write_png(out / relative, image)
            _finish_episode(out, map_name, episode, rows)
            bar.update(len(rows))
    return claimed


def _claim(out: Path, config: HarvestConfig) -> None:
    write_json_atomic(out / "harvest.json", {"config": config.to_json(), "provenance": provenance()})
    for sub in ("canonical", "randomized", "segmentation", "episodes"):
        (out / sub).mkdir(parents=True, exist_ok=True)


def _record_episode(
    out: Path,
    env: Any,
    renderer: PairedRenderer,
    map_name: str,
    episode: int,
    seed: int,
    config: HarvestConfig,
    bar: Any,
    write: Callable[[Path, np.ndarray], None] = write_png,
) -> list[dict[str, Any]]:
    clean_expert = PurePursuitExpert(ExpertConfig())
    noise = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    step = 0  # steps taken so far (across restarts)
    info: dict[str, Any] = {}  # the info of the observation the next action is chosen on

    def keep_info(latest: dict[str, Any]) -> None:
        nonlocal info
        info = latest

    def act(obs: np.ndarray) -> np.ndarray:
        # Runs before the step: the frame and the paired renders show the state the action is chosen in.
        nonlocal step
        expert_action = clean_expert.act(env)
        applied = np.clip(expert_action + noise.normal(0.0, config.noise_std, size=2), -1, 1).astype(np.float32)
        if step % config.every == 0:
            frame = f"{map_name}_{episode:03d}_{step:05d}"
            write(out / "canonical" / f"{frame}.png", obs)
            write(out / "randomized" / f"{frame}.png", renderer.randomized())
            write(out / "segmentation" / f"{frame}.png", renderer.segmentation())
            sim = env.unwrapped.sim
            rows.append(
                {
                    "frame": frame,
                    "map": map_name,
                    "episode": episode,
                    "step": step,
                    "lane_lateral_m": f"{info['lane_lateral_m']:.5f}",
                    "lane_heading_rad": f"{info['lane_heading_rad']:.5f}",
                    "in_lane": int(info["in_lane"]),
                    "speed_mps": f"{info['speed_mps']:.4f}",
                    "x_m": f"{sim.cur_pos[0]:.4f}",
                    "z_m": f"{sim.cur_pos[2]:.4f}",
                    "heading_rad": f"{sim.cur_angle:.5f}",
                    "expert_left": f"{expert_action[0]:.5f}",
                    "expert_right": f"{expert_action[1]:.5f}",
                    "applied_left": f"{applied[0]:.5f}",
                    "applied_right": f"{applied[1]:.5f}",
                }
            )
            bar.update(1)
        step += 1
        return applied

    # Noise that pushes the robot off the road starts it again in the lane; the time limit ends it.
    rollout(
        env,
        act,
        seed=seed,
        max_steps=config.steps_per_episode,
        restart="on_termination",
        on_reset=lambda obs, reset_info, episode: keep_info(reset_info),
        on_step=lambda taken: keep_info(taken.info),
    )
    return rows


def _write_manifest(out: Path, config: HarvestConfig) -> dict[str, Any]:
    rows: list[dict[str, str]] = []
    for map_name in config.maps:
        for episode in range(config.episodes_per_map):
            with open(out / "episodes" / f"{map_name}_{episode:03d}.csv", newline="") as handle:
                rows.extend(csv.DictReader(handle))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "manifest.csv", buffer.getvalue())
    summary = {"frames": len(rows), "maps": list(config.maps), "out": str(out)}
    return summary
