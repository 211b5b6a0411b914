"""The closed-loop evaluation harness: agents x domains x seeded episodes -> transfer report.

``sim2real evaluate --config configs/eval/<name>.yaml`` runs every agent variant in every domain
on the same episode seeds, measures each episode (``agents.episodes``), aggregates with 95%
bootstrap confidence intervals, and writes ``report.md`` + ``results.json`` + PNG plots (bars
with CIs, the transfer matrix as a heat map, what each variant sees in each domain).

An agent *variant* is a saved agent plus what sits between the domain's camera and the agent at
evaluation time: nothing (a robot's raw camera), a ``canonicalize`` checkpoint (the robot-side
real-to-canonical wrapper), a ``translate`` checkpoint, or ``own_pipeline`` (the generator the
agent was trained with). The agent's preprocessing (crop, resize, stack) always applies.

"Improvement" is Lomnitz et al.'s figure: for an agent evaluated with and without the
canonicalizer, the share of its drop from the reference domain to domain D that the wrapper
recovers, ``(M_with(D) - M_without(D)) / (M_without(ref) - M_without(D))``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from agents.episodes import MEASURES, EpisodeResult, episode_seeds, run_episode
from agents.pipeline import OBSERVATION_FIELDS, Pipeline, Preprocess
from agents.saved import check_pipeline, load_agent
from generators.configs import config_from_dict, load_yaml_config, rename_deprecated
from sim2real_env.domains import Domain, load_domain
from sim2real_env.errors import ConfigError
from sim2real_env.maps import resolve_map
from sim2real_env.names import unknown_name_message
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from agents.cluster import RayOptions

#: Measures where larger is better (for the improvement figure's sign).
HIGHER_IS_BETTER = {"survival_s", "distance_m", "distance_in_lane_m", "return"}


@dataclass(frozen=True)
class AgentVariant:
    """One row of the transfer matrix."""

    name: str
    path: str | None = None
    canonicalize: str | None = None
    translate: str | None = None
    own_pipeline: bool = False
    #: The privileged pure-pursuit expert (reads the simulator's lane curves; a reference row).
    expert: bool = False

    def __post_init__(self) -> None:
        if self.expert == (self.path is not None):
            raise ConfigError(f"agent {self.name!r}: give exactly one of 'path' (a saved agent) or 'expert: true'")
        if sum(bool(v) for v in (self.canonicalize, self.translate, self.own_pipeline)) > 1:
            raise ConfigError(f"agent {self.name!r}: choose at most one of canonicalize, translate, own_pipeline")
        if self.expert and (self.canonicalize or self.translate or self.own_pipeline):
            raise ConfigError(f"agent {self.name!r}: the expert reads the simulator state; it takes no wrapper")


#: Keys renamed so that each name has one unit: old name -> new name (old names still load).
RENAMED = {"episode_steps": "episode_frames"}


@dataclass(frozen=True)
class EvalConfig:
    """``configs/eval/*.yaml``; unknown keys anywhere are an error naming the key."""

    name: str
    agents: tuple[AgentVariant, ...]
    domains: tuple[str, ...] = ("canonical", "randomized", "real_proxy_image", "real_proxy_camera")
    out: str = "benchmarks/results/{name}"
    map_name: str = "small_loop"
    #: Maps every cell is driven on (``episodes`` seeds each); empty: ``map_name`` alone.
    maps: tuple[str, ...] = ()
    episodes: int = 5
    seed: int = 0
    #: Episode length in simulator frames (1 / frame_rate s each). An agent that acts every ``k``
    #: frames (``frame_skip``) gets ``episode_frames // k`` actions, so every agent drives the same time.
    episode_frames: int = 500
    reference_domain: str = "canonical"
    primary: str = "distance_in_lane_m"
    allow_pipeline_mismatch: bool = False
    bootstrap: int = 2000
    #: Optional image-level metrics of a sim->real checkpoint (see ``generators.image_metrics``).
    image_metrics: dict[str, Any] | None = None
    #: Default camera for the expert row and for agents without a record (width, height).
    camera: tuple[int, int] = (160, 120)

    def __post_init__(self) -> None:
        resolve_map(self.map_name)
        if not isinstance(self.maps, (tuple, list)) or not all(isinstance(m, str) for m in self.maps):
            raise ConfigError(f"eval config: maps must be a list of map names, got {self.maps!r}")
        object.__setattr__(self, "maps", tuple(resolve_map(m) for m in self.maps))
        if len(set(self.maps)) != len(self.maps):
            raise ConfigError(f"eval config: maps lists a map twice: {list(self.maps)}")
        if not isinstance(self.agents, (tuple, list)) or not all(
            isinstance(a, (dict, AgentVariant)) for a in self.agents
        ):
            raise ConfigError("eval config: 'agents' must be a list of mappings ({name: ..., path: ...})")
        if not isinstance(self.domains, (tuple, list)):
            raise ConfigError(f"eval config: 'domains' must be a list of domain names, got {self.domains!r}")
        if (
            not isinstance(self.camera, (tuple, list))
            or len(self.camera) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in self.camera)
        ):
            raise ConfigError(f"eval config: camera must be [width, height] (integers >= 8), got {self.camera!r}")
        agents = tuple(
            a if isinstance(a, AgentVariant) else config_from_dict(AgentVariant, a, "agent") for a in self.agents
        )
        if not agents:
            raise ConfigError("eval config: 'agents' is empty")
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"eval config: agent names must be unique, got {names}")
        object.__setattr__(self, "agents", agents)
        if not self.domains:
            raise ConfigError("eval config: 'domains' is empty")
        for domain in self.domains:
            load_domain(domain)  # unknown domain -> did-you-mean now, not after an hour of episodes
        if self.reference_domain not in self.domains:
            raise ConfigError(
                f"eval config: reference_domain {self.reference_domain!r} is not among domains {list(self.domains)}"
            )
        if self.image_metrics is not None:
            from generators.image_metrics import check_image_metrics_section

            check_image_metrics_section(self.image_metrics)
        for variant in agents:
            for kind in ("canonicalize", "translate"):
                checkpoint = getattr(variant, kind)
                if checkpoint:
                    _check_direction(checkpoint, _WRAPPER_DIRECTION[kind], f"agent {variant.name!r} {kind}")
        if self.primary not in MEASURES:
            raise ConfigError(unknown_name_message("primary measure", self.primary, MEASURES))
        for name, low in (("episodes", 1), ("episode_frames", 10), ("bootstrap", 100), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"eval config: {name} must be an integer >= {low}, got {value!r}")

    def out_dir(self) -> Path:
        """``out`` with ``{name}`` filled in."""
        return Path(self.out.format(name=self.name))

    def map_names(self) -> tuple[str, ...]:
        """The maps of every cell, in order (episodes of a cell are map-major)."""
        return self.maps or (self.map_name,)

    def seeds(self) -> list[int]:
        """Episode seeds, the same for every agent and domain (a range no training code uses)."""
        return episode_seeds("evaluate", self.seed, self.episodes)


_WRAPPER_DIRECTION = {"canonicalize": "real->canonical", "translate": "sim->real"}


def _check_direction(checkpoint: str, direction: str, where: str) -> None:
    from generators.checkpoint import read_config

    found = read_config(checkpoint)["direction"]
    if found != direction:
        raise ConfigError(f"{where}: {checkpoint} translates {found!r}, expected a {direction!r} checkpoint")


def load_eval_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> EvalConfig:
    """Read and validate ``configs/eval/<name>.yaml`` (with ``key=value`` overrides)."""
    path = Path(path)
    known = [f.name for f in dataclasses.fields(EvalConfig)] + list(RENAMED)
    raw = rename_deprecated(load_yaml_config(path, "eval config", known, overrides), RENAMED, "eval config")
    raw.setdefault("name", path.stem)
    if "agents" not in raw:
        raise ConfigError(f"eval config {path} needs 'agents'")
    raw["domains"] = tuple(raw.get("domains", EvalConfig.domains))
    if "camera" in raw:
        raw["camera"] = tuple(raw["camera"])
    return EvalConfig(**{**raw, "agents": tuple(raw["agents"])})


def bootstrap_ci(values: list[float] | np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the mean (NaNs dropped)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return math.nan, math.nan, math.nan
    if data.size == 1:
        return float(data[0]), float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(data.mean()), float(low), float(high)


def improvement(ref_without: float, dom_without: float, dom_with: float, higher_is_better: bool = True) -> float:
    """Share of the reference -> domain drop that the wrapper recovers (NaN when there is no drop)."""
    drop = ref_without - dom_without if higher_is_better else dom_without - ref_without
    gain = dom_with - dom_without if higher_is_better else dom_without - dom_with
    if not math.isfinite(drop) or drop <= 1e-9:
        return math.nan
    return gain / drop


# -- building the cell env --------------------------------------------------------------------


def _effective_pipeline(variant: AgentVariant, record: dict[str, Any], domain: Domain) -> Pipeline:
    """What the agent observes in ``domain`` under ``variant``, as a pipeline (for mismatch checks and wrapping)."""
    observation = {k: v for k, v in record["observation"].items() if k in OBSERVATION_FIELDS}
    env = {**observation, **domain.env}
    preprocess = config_from_dict(Preprocess, record["preprocess"], "preprocess")
    checkpoint, name = None, "randomized" if env.get("domain_rand") else "raw"
    if variant.canonicalize:
        checkpoint, name = variant.canonicalize, "canonicalized"
    elif variant.translate:
        checkpoint, name = variant.translate, "sim2real"
    elif variant.own_pipeline and record.get("checkpoint"):
        checkpoint, name = record["checkpoint"], record["name"]
    checkpoint_id = None
    if checkpoint is not None:
        from generators.checkpoint import checkpoint_id as id_of

        checkpoint_id = id_of(checkpoint)
    source = "distorted" if env.get("distortion") else "randomized"
    return Pipeline(name, env, preprocess, checkpoint, checkpoint_id, source)


def _agent_env(config: EvalConfig, pipeline: Pipeline, domain: Domain, map_name: str, threads: int = 2) -> Any:
    base = {k: v for k, v in pipeline.env.items() if k in OBSERVATION_FIELDS and k not in domain.env}
    frame_skip = int(domain.env.get("frame_skip", base.get("frame_skip", 1)))
    length = max(1, config.episode_frames // frame_skip)
    env_config = domain.env_config(map_name=map_name, episode_length=length, **base)
    return pipeline.make_env(config=env_config, image_ops=domain.image, threads=threads)


def _expert_env(config: EvalConfig, domain: Domain, map_name: str) -> Any:
    width, height = config.camera
    return domain.make_env(
        map_name=map_name, episode_length=config.episode_frames, camera_width=width, camera_height=height
    )


# -- the run ----------------------------------------------------------------------------------


def evaluate(config: EvalConfig, *, progress: bool = True, ray: RayOptions | None = None) -> dict[str, Any]:
    """Run the whole matrix and write the report; returns the results mapping.

    ``ray``: run the (agent, domain, seed) episodes on Ray workers (:mod:`agents.cluster`), each
    reusing its simulator across the episodes of a cell; the results are the serial run's.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(INFERENCE_THREADS)
    try:
        return _evaluate(config, progress=progress, ray=ray)
    finally:
        torch.set_num_threads(previous_threads)


#: Threads of agent and generator inference in every evaluation process, serial or Ray worker: a
#: batch-1 forward pass gains little from more, and a fixed count makes the float results (and so
#: the episodes) independent of how many workers ran them.
INFERENCE_THREADS = 1


def _evaluate(config: EvalConfig, *, progress: bool, ray: RayOptions | None) -> dict[str, Any]:
    from agents.expert import PurePursuitExpert

    out = config.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    domains = {name: load_domain(name) for name in config.domains}
    # Load every agent and check every (variant, domain) pipeline before the first episode.
    loaded: dict[str, Any] = {}
    pipelines: dict[tuple[str, str], Pipeline] = {}
    differences: dict[str, dict[str, list[str]]] = {}
    for variant in config.agents:
        if variant.expert:
            continue
        agent = load_agent(variant.path)  # type: ignore[arg-type]
        loaded[variant.name] = agent
        differences[variant.name] = {}
        for dname, domain in domains.items():
            pipeline = _effective_pipeline(variant, agent.record["pipeline"], domain)
            where = f"{variant.name} ({variant.path}) in domain {dname}"
            differences[variant.name][dname] = check_pipeline(
                agent.record, pipeline, config.allow_pipeline_mismatch, where
            )
            pipelines[(variant.name, dname)] = pipeline
    seeds = config.seeds()
    maps = config.map_names()
    total = len(config.agents) * len(domains) * len(maps) * len(seeds)
    bar = tqdm(total=total, desc="evaluate", unit="episode", disable=not progress)
    episodes: dict[str, dict[str, list[EpisodeResult]]] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}
    started = time.perf_counter()
    serial_agents = config.agents
    if ray is not None and ray.enabled:  # the same episodes on Ray workers; none is left for the loop below
        episodes, samples = _episodes_on_ray(config, seeds, bar, ray)
        serial_agents = ()
    for variant in serial_agents:
        episodes[variant.name] = {}
        samples[variant.name] = {}
        for dname, domain in domains.items():
            cell: list[EpisodeResult] = []
            for map_index, map_name in enumerate(maps):
                if variant.expert:
                    env = _expert_env(config, domain, map_name)
                    expert = PurePursuitExpert()

                    def policy(obs: np.ndarray, env: Any = env, expert: Any = expert) -> np.ndarray:
                        return expert.act(env)
                else:
                    env = _agent_env(config, pipelines[(variant.name, dname)], domain, map_name, INFERENCE_THREADS)
                    policy = loaded[variant.name].act
                for seed in seeds:
                    cell.append(run_episode(env, policy, seed))
                    bar.update(1)
                if map_index == 0:
                    obs, _ = env.reset(seed=seeds[0])
                    samples[variant.name][dname] = obs[..., -3:] if obs.shape[-1] > 3 else obs
                env.close()
            episodes[variant.name][dname] = cell
            bar.set_postfix(agent=variant.name, domain=dname)
    bar.close()
    results = _aggregate(config, episodes)
    results["differences"] = differences
    results["wall_s"] = time.perf_counter() - started
    results["agents"] = {
        name: {
            "path": next(v.path for v in config.agents if v.name == name),
            "pipeline": agent.record["pipeline"],
            "algo": agent.algo,
            "git_sha": agent.record.get("git_sha"),
        }
        for name, agent in loaded.items()
    }
    results["variants"] = [dataclasses.asdict(v) for v in config.agents]
    results["domains"] = {name: dataclasses.asdict(d) for name, d in domains.items()}
    results["checkpoints"] = {
        f"{v}/{d}": p.checkpoint_id for (v, d), p in pipelines.items() if p.checkpoint_id is not None
    }
    results["config"] = dataclasses.asdict(config)
    results["provenance"] = provenance()
    write_json_atomic(out / "results.json", results)  # episodes are safe before the image metrics run
    if config.image_metrics:
        from agents.drive import expert_drive_frames
        from generators.image_metrics import image_metrics_from_config

        results["image_metrics"] = image_metrics_from_config(
            config.image_metrics, out, drive_frames=expert_drive_frames
        )
        write_json_atomic(out / "results.json", results)
    _plots(config, results, samples, out)
    write_text_atomic(out / "report.md", render_report(config, results))
    return results


class _EvalWorker:
    """A Ray actor: keeps the simulator of the (agent, domain) cell it is on for that cell's next episode."""

    def __init__(self, config: EvalConfig, threads: int) -> None:
        from agents.cluster import pin_threads

        pin_threads(threads)
        import torch

        torch.set_num_threads(INFERENCE_THREADS)  # the serial run's count: the same floats, the same episodes
        self.config, self.threads = config, threads
        self.agents: dict[str, Any] = {}
        self.cell: tuple[str, str, str] | None = None
        self.env: Any = None
        self.policy: Any = None

    def _enter(self, variant_name: str, domain_name: str, map_name: str) -> None:
        """Build the cell's env and policy exactly as the serial loop does."""
        from agents.expert import PurePursuitExpert

        if self.env is not None:
            self.env.close()
        variant = next(v for v in self.config.agents if v.name == variant_name)
        domain = load_domain(domain_name)
        if variant.expert:
            env = _expert_env(self.config, domain, map_name)
            expert = PurePursuitExpert()

            def policy(obs: np.ndarray, env: Any = env, expert: Any = expert) -> np.ndarray:
                return expert.act(env)

            self.env, self.policy = env, policy
        else:
            if variant.name not in self.agents:
                self.agents[variant.name] = load_agent(variant.path)  # type: ignore[arg-type]
            agent = self.agents[variant.name]
            pipeline = _effective_pipeline(variant, agent.record["pipeline"], domain)
            self.env = _agent_env(self.config, pipeline, domain, map_name, threads=INFERENCE_THREADS)
            self.policy = agent.act
        self.cell = (variant_name, domain_name, map_name)

    def episode(self, variant_name: str, domain_name: str, index: int) -> tuple[Any, ...]:
        """Episode ``index`` of the cell (map-major): ``(variant, domain, index, result, view or None)``."""
        seeds = self.config.seeds()
        map_name = self.config.map_names()[index // len(seeds)]
        if self.cell != (variant_name, domain_name, map_name):
            self._enter(variant_name, domain_name, map_name)
        result = run_episode(self.env, self.policy, seeds[index % len(seeds)])
        view = None
        if index == 0:  # what the variant sees: the first frame of seed 0, as the serial loop records it
            obs, _ = self.env.reset(seed=seeds[0])
            view = obs[..., -3:] if obs.shape[-1] > 3 else obs
        return variant_name, domain_name, index, result, view


def _episodes_on_ray(
    config: EvalConfig, seeds: list[int], bar: Any, options: RayOptions
) -> tuple[dict[str, dict[str, list[EpisodeResult]]], dict[str, dict[str, np.ndarray]]]:
    """Every (agent, domain, seed) episode on Ray workers, handed out cell by cell."""
    from agents.cluster import RaySession

    count = len(seeds) * len(config.map_names())
    work = [(v.name, d, i) for v in config.agents for d in config.domains for i in range(count)]
    found: dict[tuple[str, str, int], EpisodeResult] = {}
    samples: dict[str, dict[str, np.ndarray]] = {v.name: {} for v in config.agents}
    with RaySession(options) as session:
        actors = session.actors(_EvalWorker, config)
        for variant, domain, index, result, view in session.map_unordered(
            actors, lambda actor, item: actor.episode.remote(*item), work
        ):
            found[(variant, domain, index)] = result
            if view is not None:
                samples[variant][domain] = view
            bar.update(1)
    episodes = {
        v.name: {d: [found[(v.name, d, i)] for i in range(count)] for d in config.domains} for v in config.agents
    }
    return episodes, samples


def rerender(config: EvalConfig) -> dict[str, Any]:
    """Re-aggregate and rewrite ``report.md``/``results.json`` from the stored episodes (none re-run).

    For changes in aggregation or report code after a long run; the PNGs are left as they are.
    """
    path = config.out_dir() / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"evaluate --rerender: {path} does not exist; run the evaluation first")
    results = json.loads(path.read_text())
    episodes = {
        agent: {
            domain: [EpisodeResult(**{("return_" if k == "return" else k): v for k, v in row.items()}) for row in rows]
            for domain, rows in by_domain.items()
        }
        for agent, by_domain in results["episodes"].items()
    }
    aggregated = _aggregate(config, episodes)
    results["summary"], results["improvement"] = aggregated["summary"], aggregated["improvement"]
    results["rerendered"] = provenance()
    write_json_atomic(path, results)
    write_text_atomic(config.out_dir() / "report.md", render_report(config, results))
    return results


def _aggregate(config: EvalConfig, episodes: dict[str, dict[str, list[EpisodeResult]]]) -> dict[str, Any]:
    per_episode = {a: {d: [r.to_dict() for r in rs] for d, rs in ds.items()} for a, ds in episodes.items()}
    summary: dict[str, dict[str, dict[str, list[float]]]] = {}
    for agent, by_domain in per_episode.items():
        summary[agent] = {}
        for domain, rows in by_domain.items():
            summary[agent][domain] = {
                m: list(bootstrap_ci([row[m] for row in rows], config.bootstrap, config.seed)) for m in MEASURES
            }
    improvements: dict[str, dict[str, float]] = {}
    for with_variant in config.agents:
        if not with_variant.canonicalize:
            continue
        without = next(
            (
                v
                for v in config.agents
                if v.path == with_variant.path and not (v.canonicalize or v.translate or v.own_pipeline)
            ),
            None,
        )
        if without is None:
            continue
        key = f"{with_variant.name} vs {without.name}"
        improvements[key] = {}
        ref_mean, ref_low, ref_high = summary[without.name][config.reference_domain][config.primary]
        for domain in config.domains:
            if domain == config.reference_domain:
                continue
            mean, low, high = summary[without.name][domain][config.primary]
            # A drop inside the confidence intervals is noise; a share of noise would be a made-up figure.
            overlap = low <= ref_high and ref_low <= high
            improvements[key][domain] = (
                math.nan
                if overlap
                else improvement(
                    ref_mean,
                    mean,
                    summary[with_variant.name][domain][config.primary][0],
                    config.primary in HIGHER_IS_BETTER,
                )
            )
    return {"episodes": per_episode, "summary": summary, "improvement": improvements}


def _fmt(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def render_report(config: EvalConfig, results: dict[str, Any]) -> str:
    """The Markdown report."""
    prov = results["provenance"]
    lines = [
        f"# Transfer report: {config.name}",
        "",
        f"Produced by `{prov['command']}` at git `{prov['git_sha']}`; "
        f"map{'s' if len(config.map_names()) > 1 else ''} {', '.join(f'`{m}`' for m in config.map_names())}, "
        f"{config.episodes} episodes per map and cell (seeds {config.seeds()[0]}..{config.seeds()[-1]}, "
        f"the same for every agent), at most {config.episode_frames} simulator frames each (fewer actions for "
        "agents with a frame skip). Intervals: 95% "
        f"percentile bootstrap of the mean ({config.bootstrap} resamples). Wall time {results['wall_s']:.0f} s."
        + (
            f" Aggregates re-rendered from the stored episodes by `{results['rerendered']['command']}` at git "
            f"`{results['rerendered']['git_sha']}`."
            if "rerendered" in results
            else ""
        ),
        "",
        "## Agents",
        "",
        "| variant | agent | trained on | evaluation-time wrapper |",
        "|---|---|---|---|",
    ]
    for v in config.agents:
        info = results["agents"].get(v.name)
        trained = "privileged state" if v.expert else f"{info['algo']} / {info['pipeline']['name']}"
        if info and info["pipeline"].get("checkpoint_id"):
            trained += f" ({info['pipeline']['checkpoint_id']})"
        wrapper = (
            f"canonicalize {v.canonicalize}" if v.canonicalize else f"translate {v.translate}" if v.translate else
            "own pipeline" if v.own_pipeline else "none"
        )  # fmt: skip
        lines.append(f"| {v.name} | {v.path or 'pure-pursuit expert'} | {trained} | {wrapper} |")
    lines += ["", "## Domains", ""]
    for name, domain in results["domains"].items():
        lines.append(f"- **{name}**: {domain['description'].strip()}")
    lines += ["", f"## Primary measure: {config.primary}", ""]
    lines += _matrix_table(config, results, config.primary)
    if results["improvement"]:
        lines += [
            "",
            f"## Improvement (share of the {config.reference_domain} -> domain drop in {config.primary} that the "
            "wrapper recovers; only where the 95% intervals of the reference and the domain do not overlap)",
            "",
            "| pair | " + " | ".join(d for d in config.domains if d != config.reference_domain) + " |",
            "|---|" + "---|" * (len(config.domains) - 1),
        ]
        for pair, values in results["improvement"].items():
            cells = [f"{values[d]:.0%}" if math.isfinite(values[d]) else "no drop beyond the CIs" for d in values]
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    lines += ["", "## All measures", ""]
    for measure in MEASURES:
        if measure == config.primary:
            continue
        lines += [f"### {measure}", "", *_matrix_table(config, results, measure), ""]
    mismatched = {a: {d: v for d, v in ds.items() if v} for a, ds in results["differences"].items()}
    mismatched = {a: ds for a, ds in mismatched.items() if ds}
    if mismatched:
        lines += ["## Pipeline differences (transfer conditions, run on purpose)", ""]
        for agent, by_domain in mismatched.items():
            for domain, diffs in by_domain.items():
                lines.append(f"- {agent} in {domain}: {'; '.join(diffs)}")
        lines.append("")
    if "image_metrics" in results:
        from generators.image_metrics import render_image_metrics

        lines += render_image_metrics(results["image_metrics"])
    lines += [
        "## Files",
        "",
        "- `results.json`: every episode, aggregates, configs, checkpoint ids, provenance",
        "- `bars.png`: primary measure with 95% intervals; `matrix.png`: the transfer matrix; "
        "`views.png`: what each variant sees in each domain (first frame of seed 0)",
        "",
    ]
    return "\n".join(lines)


def _matrix_table(config: EvalConfig, results: dict[str, Any], measure: str) -> list[str]:
    lines = ["| variant | " + " | ".join(config.domains) + " |", "|---|" + "---|" * len(config.domains)]
    for v in config.agents:
        cells = [_fmt(*results["summary"][v.name][d][measure]) for d in config.domains]
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    return lines


def _plots(config: EvalConfig, results: dict[str, Any], samples: dict[str, dict[str, np.ndarray]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.video import write_figure

    names = [v.name for v in config.agents]
    domains = list(config.domains)
    summary = results["summary"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(domains) * max(1, len(names)) / 2), 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        stats = np.array([summary[name][d][config.primary] for d in domains])
        x = np.arange(len(domains)) + i * width - 0.4 + width / 2
        err = np.abs(np.stack([stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]]))
        ax.bar(x, stats[:, 0], width, yerr=err, capsize=3, label=name)
    ax.set_xticks(np.arange(len(domains)), domains, rotation=15)
    ax.set_ylabel(f"{config.primary} (mean, 95% CI)")
    ax.set_title(f"{config.name}: {config.episodes} episodes per cell")
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_figure(out / "bars.png", fig)
    plt.close(fig)

    matrix = np.array([[summary[n][d][config.primary][0] for d in domains] for n in names])
    fig, ax = plt.subplots(figsize=(1.5 + 1.5 * len(domains), 1 + 0.5 * len(names)))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(domains)), domains, rotation=20)
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, label=config.primary)
    fig.tight_layout()
    write_figure(out / "matrix.png", fig)
    plt.close(fig)

    fig, axes = plt.subplots(len(names), len(domains), figsize=(2.2 * len(domains), 1.4 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        for j, domain in enumerate(domains):
            axes[i][j].imshow(samples[name][domain])
            axes[i][j].set_xticks([])
            axes[i][j].set_yticks([])
            if i == 0:
                axes[i][j].set_title(domain, fontsize=8)
            if j == 0:
                axes[i][j].set_ylabel(name, fontsize=7)
    fig.tight_layout()
    write_figure(out / "views.png", fig)
    plt.close(fig)
