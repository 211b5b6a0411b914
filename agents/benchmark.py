"""The transfer benchmark: does training through the wrapper help, and against what.

``sim2real transfer-benchmark --config configs/benchmark/transfer.yaml`` runs three stages:

1. **train**: every (algorithm, pipeline, training seed) agent, each in its own folder
   ``<agents_dir>/<algo>_<pipeline>_s<seed>``, as Ray Tune trials (``--workers N`` at a time,
   locally or on ``--ray-address``); a folder that already holds the same agent is reused, a PPO
   run cut short is resumed, a BC run cut short starts again (BC is minutes).
2. **evaluate**: every agent (raw agents also behind the real-to-canonical wrapper) and the
   privileged expert in every domain, on every map, on the same episode seeds, through
   :func:`agents.evaluate.evaluate` (episodes on Ray workers with ``--workers``).
3. **report**: each episode's distance driven in lane as a share of the expert's on the same
   domain, map and seed; per algorithm and domain the interquartile mean over training seeds and
   episodes with stratified-bootstrap 95% intervals, probabilities of improvement and performance
   profiles (``rliable``, :mod:`agents.statistics`); ``report.md`` opens with, per domain, the best
   pipeline and whether its lead is significant, and says in words how certain each comparison is.

Training budgets are the algorithm configs plus the benchmark's overrides, the same for every
pipeline (the report lists them with the measured wall time per pipeline).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.algorithms import ALGORITHMS
from agents.cluster import RayOptions
from agents.pipeline import PIPELINES
from generators.configs import config_from_dict, config_to_dict
from sim2real_env.checkpoints import BEST, LAST, has_saved, last_folder
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.names import resolve_name, unknown_name_message
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic
from sim2real_env.yaml_config import find_config, load_yaml_config

STAGES: tuple[str, ...] = ("train", "evaluate", "report")
#: The label of raw agents evaluated behind the real-to-canonical wrapper.
CANONICALIZED_LABEL = "raw+canonicalize"


@dataclass(frozen=True)
class PipelineSpec:
    """One row of the benchmark: a label, the observation pipeline and its generator checkpoint."""

    name: str
    pipeline: str
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"benchmark pipeline name must be letters, digits and '_', got {self.name!r}")
        resolve_name("benchmark pipeline", self.pipeline, PIPELINES)


@dataclass(frozen=True)
class AlgoSpec:
    """An agent config file and the benchmark's overrides of it (the training budget)."""

    config: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvaluationSpec:
    """Where and how long every agent is evaluated."""

    maps: tuple[str, ...] = ("small_loop", "loop_empty", "zigzag_dists")
    domains: tuple[str, ...] = ("canonical", "real_proxy_image", "real_proxy_camera")
    #: Episode seeds per map and agent; a (pipeline, domain, map) cell has seeds x episodes.
    episodes: int = 7
    episode_frames: int = 200
    seed: int = 0


@dataclass(frozen=True)
class BenchmarkConfig:
    """``configs/benchmark/*.yaml``; unknown keys anywhere are an error naming the key."""

    name: str
    pipelines: tuple[PipelineSpec, ...]
    algos: dict[str, AlgoSpec]
    seeds: tuple[int, ...] = (0, 1, 2)
    out: str = "benchmarks/results/{name}"
    agents_dir: str = "runs/{name}/agents"
    #: A real->canonical checkpoint: raw agents are also evaluated behind it.
    canonicalize: str | None = None
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    #: The pipeline the headline is about, and what it is compared with.
    candidate: str = "sim2real"
    comparisons: tuple[str, ...] = ("raw", "randomized", "augmented", "color_transfer")
    bootstrap: int = 2000
    #: Optional image metrics of a sim->real checkpoint in the matrix report (``generators.image_metrics``).
    image_metrics: dict[str, Any] | None = None
    #: Optional folder of real frames (its ``train`` split): a reference row in the frame statistics.
    real_dir: str | None = None
    #: Further sim->real checkpoints whose frames the frame statistics describe (label -> checkpoint),
    #: e.g. the round-1 CycleGAN that PPO collapsed on.
    frame_diagnostics: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.pipelines]
        if len(set(names)) != len(names):
            raise ConfigError(f"benchmark: pipeline names must be unique, got {names}")
        if not names:
            raise ConfigError("benchmark: 'pipelines' is empty")
        for algo in self.algos:
            resolve_name("benchmark algorithm", algo, tuple(ALGORITHMS))
        if not self.algos:
            raise ConfigError("benchmark: 'algos' is empty")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ConfigError(f"benchmark: seeds must be a non-empty list of integers >= 0, got {list(self.seeds)}")
        if len(self.seeds) < 2:
            raise ConfigError(
                f"benchmark: seeds needs at least 2 training seeds (one seed gives intervals of zero width), "
                f"got {list(self.seeds)}"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"benchmark: seeds lists a seed twice: {list(self.seeds)}")
        labels = [*names, CANONICALIZED_LABEL] if self.canonicalize else names
        for label in (self.candidate, *self.comparisons):
            if label not in labels:
                raise ConfigError(unknown_name_message("benchmark candidate/comparison pipeline", label, labels))
        if self.canonicalize and "raw" not in names:
            raise ConfigError("benchmark: 'canonicalize' evaluates the raw agents behind it; add a 'raw' pipeline")
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int) or self.bootstrap < 100:
            raise ConfigError(f"benchmark: bootstrap must be an integer >= 100, got {self.bootstrap!r}")
        try:
            self.out.format(name=self.name)
            self.agents_dir.format(name=self.name)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"benchmark: out/agents_dir may use only {{name}} ({exc})") from None

    def out_dir(self) -> Path:
        """``out`` with ``{name}`` filled in."""
        return Path(self.out.format(name=self.name))

    def agents_root(self) -> Path:
        """``agents_dir`` with ``{name}`` filled in."""
        return Path(self.agents_dir.format(name=self.name))

    def trials(self) -> list[Trial]:
        """Every training run, seeds outermost so that a partial run covers every pipeline."""
        root = self.agents_root()
        return [
            Trial(algo, spec, seed, root / f"{algo}_{spec.name}_s{seed}")
            for seed in self.seeds
            for algo in self.algos
            for spec in self.pipelines
        ]


def load_benchmark_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> BenchmarkConfig:
    """Read and validate ``configs/benchmark/<name>.yaml`` (with ``key=value`` overrides)."""
    path = Path(path)
    raw = load_yaml_config(path, "benchmark config", [f.name for f in dataclasses.fields(BenchmarkConfig)], overrides)
    raw.setdefault("name", path.stem)
    for key in ("pipelines", "algos"):
        if key not in raw:
            raise ConfigError(f"benchmark config {path} needs '{key}'")
    if not isinstance(raw["pipelines"], list) or not all(isinstance(p, dict) for p in raw["pipelines"]):
        raise ConfigError(f"benchmark config {path}: 'pipelines' must be a list of {{name, pipeline, checkpoint}}")
    if not isinstance(raw["algos"], dict):
        raise ConfigError(f"benchmark config {path}: 'algos' must map bc/ppo to {{config, overrides}}")
    raw["pipelines"] = tuple(config_from_dict(PipelineSpec, p, "benchmark pipeline") for p in raw["pipelines"])
    algos = {}
    for algo, spec in raw["algos"].items():
        algo_spec = config_from_dict(AlgoSpec, spec or {}, f"benchmark algos.{algo}")
        if not all(isinstance(o, str) and "=" in o for o in algo_spec.overrides):
            raise ConfigError(f"benchmark algos.{algo}.overrides must be 'key.sub=value' strings")
        algos[str(algo)] = algo_spec
    raw["algos"] = algos
    raw["evaluation"] = config_from_dict(EvaluationSpec, raw.get("evaluation") or {}, "benchmark evaluation")
    for key in ("seeds", "comparisons"):
        if key in raw:
            if not isinstance(raw[key], list):
                raise ConfigError(f"benchmark config {path}: '{key}' must be a list, got {raw[key]!r}")
            raw[key] = tuple(raw[key])
    return BenchmarkConfig(**raw)


# -- stage 1: training ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One agent to train: algorithm, pipeline, training seed and its folder."""

    algo: str
    spec: PipelineSpec
    seed: int
    out: Path

    @property
    def name(self) -> str:
        """``<algo>_<pipeline>_s<seed>``, the agent's name in the evaluation."""
        return self.out.name

    @property
    def agent_path(self) -> Path:
        """The agent that is evaluated: BC's last agent, PPO's best evaluated policy (``checkpoints/best``).

        A trial folder of the older layout: its ``agent/`` or ``best_agent/``.
        """
        from agents.saved import resolve_agent_path

        return resolve_agent_path(self.out, default=BEST if self.algo == "ppo" else LAST)

    def last_agent(self) -> Path | None:
        """The agent the run saved last (``checkpoints/last``, or the older layout's ``agent/``), if any."""
        if has_saved(self.out):
            return last_folder(self.out)
        legacy = self.out / "agent"
        return legacy if (legacy / "agent.json").exists() else None


#: Config keys that do not change the agent (kept checkpoints): not compared when a trial folder is reused.
BOOKKEEPING = ("keep_last",)


def _agent_run(config: BenchmarkConfig, trial: Trial) -> tuple[Any, Any, Any]:
    """``(AgentRunConfig, Pipeline, algorithm config)`` of a trial: the config file, overrides, seed."""
    from agents.config import load_agent_config

    spec = config.algos[trial.algo]
    run = load_agent_config(spec.config, [*spec.overrides, f"{trial.algo}.seed={trial.seed}"])
    if run.algo != trial.algo:
        raise ConfigError(f"benchmark algos.{trial.algo}.config {spec.config} is a {run.algo!r} config")
    pipeline = run.pipeline(trial.spec.pipeline, checkpoint=trial.spec.checkpoint)
    return run, pipeline, run.algo_config()


def trial_state(config: BenchmarkConfig, trial: Trial) -> str:
    """``done`` (the folder holds this very agent), ``resume`` (a PPO checkpoint), or ``new``.

    A folder holding an agent trained with other settings is an error: silently retraining over
    it, or silently evaluating it, would both report a budget that was not run.
    """
    _, pipeline, algo_config = _agent_run(config, trial)
    last = trial.last_agent()
    if last is not None:
        record = json.loads((last / "agent.json").read_text())
        wanted = json.loads(json.dumps(config_to_dict(algo_config), default=str))
        differences = pipeline.differences(record.get("pipeline", {}))
        # The pipeline's other env fields (reward, map, episode length, spawn) change the training too.
        env_wanted, env_recorded = pipeline.record()["env"], record.get("pipeline", {}).get("env", {})
        differences += [
            f"env.{k}: {env_recorded.get(k)!r} vs {env_wanted.get(k)!r}"
            for k in sorted(set(env_wanted) | set(env_recorded))
            if env_recorded.get(k) != env_wanted.get(k)
        ]
        recorded = record.get("config", {})
        changed = [
            f"{k}: {recorded.get(k)!r} vs {wanted.get(k)!r}"
            for k in sorted(set(wanted) | set(recorded))
            if k not in BOOKKEEPING and recorded.get(k) != wanted.get(k)
        ]
        if differences or changed:
            raise InputError(
                f"{trial.out} holds a {trial.algo} agent trained with other settings "
                f"({'; '.join(differences + changed)}); remove the folder or set another agents_dir"
            )
        summary = record.get("summary", {})
        # A periodic checkpoint's agent ("final": false) and a stopped run's are not the budget the report states.
        unfinished = summary.get("final") is False or summary.get("interrupted")
        if trial.algo == "ppo" and (unfinished or summary.get("env_steps", 0) < wanted["total_steps"]):
            return "resume"
        if not (trial.agent_path / "agent.json").exists():
            raise InputError(f"{trial.out} has an agent but no {trial.agent_path.name}; remove the folder to retrain")
        return "done"
    if trial.algo == "ppo" and (trial.out / "checkpoint").exists() and (trial.out / "progress.json").exists():
        return "resume"
    return "new"


def train_trial(config: BenchmarkConfig, trial: Trial, *, progress: bool = False) -> dict[str, Any]:
    """Train (or resume, or reuse) one trial's agent; returns its row of the training table."""
    state = trial_state(config, trial)
    last = trial.last_agent()
    if state == "done" and last is not None:
        summary = json.loads((last / "agent.json").read_text()).get("summary", {})
        return _training_row(trial, summary, "reused")
    _, pipeline, algo_config = _agent_run(config, trial)
    if state == "new" and trial.out.exists():
        shutil.rmtree(trial.out)  # a BC run (or a PPO run before its first checkpoint) cut short
    # trial_state says "resume" for PPO only, so BC (which refuses --resume) always starts afresh.
    algorithm = ALGORITHMS.lookup(trial.algo)
    summary = algorithm.train(pipeline, algo_config, trial.out, resume=state == "resume", progress=progress)
    if summary.get("interrupted"):  # a PPO run stopped by a signal
        raise InputError(f"{trial.name}: training was interrupted; run the benchmark again to resume it")
    return _training_row(trial, summary, "resumed" if state == "resume" else "trained")


def _training_row(trial: Trial, summary: dict[str, Any], status: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trial": trial.name,
        "algo": trial.algo,
        "pipeline": trial.spec.name,
        "seed": trial.seed,
        "status": status,
        "wall_s": float(summary.get("wall_s", math.nan)),
        "git_sha": summary.get("provenance", {}).get("git_sha"),
    }
    if trial.algo == "bc":
        row["samples"] = summary.get("samples")
        row["closed_loop_m"] = summary.get("closed_loop", {}).get("distance_in_lane_m")
    else:
        row["env_steps"] = summary.get("env_steps")
        row["best_eval_m"] = summary.get("best", {}).get("distance_in_lane_m")
        row["best_at_steps"] = summary.get("best", {}).get("env_steps")
        row["bc_init_samples"] = (summary.get("bc_init") or {}).get("samples")
    return row


def trained_rows(config: BenchmarkConfig) -> list[dict[str, Any]]:
    """The training table of a benchmark whose agents are all trained (error naming the first that is not)."""
    rows = []
    for trial in config.trials():
        if trial_state(config, trial) != "done":
            raise InputError(f"benchmark: {trial.out} holds no finished agent; run the train stage first")
        rows.append(train_trial(config, trial))
    return rows


def _tune_trainable(params: dict[str, Any]) -> None:
    """A Ray Tune function trainable: one agent (module level so that Ray can ship it)."""
    from ray import tune

    from agents.cluster import pin_threads

    pin_threads(int(params["threads"]))
    config = _config_from_json(params["config"])
    trial = next(t for t in config.trials() if t.name == params["trial"])
    tune.report({"done": 1, **{k: v for k, v in train_trial(config, trial).items() if isinstance(v, (int, float))}})


def _config_to_json(config: BenchmarkConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _config_from_json(data: dict[str, Any]) -> BenchmarkConfig:
    return BenchmarkConfig(
        **{
            **data,
            "pipelines": tuple(PipelineSpec(**p) for p in data["pipelines"]),
            "algos": {k: AlgoSpec(v["config"], tuple(v["overrides"])) for k, v in data["algos"].items()},
            "seeds": tuple(data["seeds"]),
            "comparisons": tuple(data["comparisons"]),
            "evaluation": EvaluationSpec(
                **{
                    **data["evaluation"],
                    "maps": tuple(data["evaluation"]["maps"]),
                    "domains": tuple(data["evaluation"]["domains"]),
                }
            ),
        }
    )


def _absolute(config: BenchmarkConfig) -> BenchmarkConfig:
    """Paths made absolute: Ray Tune runs trials in their own working directories."""

    def absolute(path: str | None) -> str | None:
        if path is None or path.startswith("pretrained:"):
            return path
        return str(Path(path).resolve())

    return dataclasses.replace(
        config,
        out=str(Path(config.out.format(name=config.name)).resolve()),
        agents_dir=str(config.agents_root().resolve()),
        canonicalize=absolute(config.canonicalize),
        pipelines=tuple(dataclasses.replace(p, checkpoint=absolute(p.checkpoint)) for p in config.pipelines),
        algos={k: dataclasses.replace(v, config=str(find_config(v.config).resolve())) for k, v in config.algos.items()},
    )


def train_all(config: BenchmarkConfig, ray: RayOptions, *, progress: bool = True) -> list[dict[str, Any]]:
    """Stage 1: every trial; the ones not done run as Ray Tune trials (serially without ``--workers``)."""
    from tqdm import tqdm

    config = _absolute(config)
    trials = config.trials()
    rows: dict[str, dict[str, Any]] = {}
    pending = []
    for trial in trials:  # every folder is checked before the first agent trains
        if trial_state(config, trial) == "done":
            rows[trial.name] = train_trial(config, trial)
        else:
            pending.append(trial)
    if pending and ray.enabled:
        from ray import tune

        from agents.cluster import RaySession

        with RaySession(ray) as session:
            threads = session.threads
            trainable = tune.with_resources(_tune_trainable, {"cpu": threads})
            tuner = tune.Tuner(
                trainable,
                param_space={
                    "trial": tune.grid_search([t.name for t in pending]),
                    "config": _config_to_json(config),
                    "threads": threads,
                },
                tune_config=tune.TuneConfig(max_concurrent_trials=ray.workers, reuse_actors=False),
                run_config=tune.RunConfig(
                    name=f"{config.name}_train",
                    storage_path=str(Path(config.out) / "tune"),
                    failure_config=tune.FailureConfig(max_failures=1),
                    verbose=1 if progress else 0,
                ),
            )
            results = tuner.fit()
            failed = [results[i] for i in range(len(results)) if results[i].error is not None]
            if failed:
                raise InputError(f"benchmark: {len(failed)} training trial(s) failed; first: {failed[0].error}")
    else:
        for trial in tqdm(pending, desc="benchmark train", unit="agent", disable=not progress):
            rows[trial.name] = train_trial(config, trial, progress=False)
    for trial in pending:
        if trial.name not in rows:
            rows[trial.name] = train_trial(config, trial)  # now done: its row from the saved summary
            rows[trial.name]["status"] = "trained"
    return [rows[t.name] for t in trials]


# -- stage 2: evaluation --------------------------------------------------------------------------


def eval_config(config: BenchmarkConfig) -> Any:
    """The :class:`agents.evaluate.EvalConfig` of the matrix: every agent, the canonicalized raw agents, the expert."""
    from agents.evaluate import EvalConfig

    agents: list[dict[str, Any]] = []
    for trial in config.trials():
        agents.append({"name": trial.name, "path": str(trial.agent_path)})
        if config.canonicalize and trial.spec.name == "raw":
            agents.append(
                {
                    "name": f"{trial.algo}_{CANONICALIZED_LABEL}_s{trial.seed}",
                    "path": str(trial.agent_path),
                    "canonicalize": config.canonicalize,
                }
            )
    agents.append({"name": "expert", "expert": True})
    spec = config.evaluation
    return EvalConfig(
        name=f"{config.name}_matrix",
        agents=tuple(agents),  # type: ignore[arg-type]
        domains=spec.domains,
        out=str(config.out_dir() / "matrix"),
        maps=spec.maps,
        map_name=spec.maps[0],
        episodes=spec.episodes,
        seed=spec.seed,
        episode_frames=spec.episode_frames,
        reference_domain=spec.domains[0],
        allow_pipeline_mismatch=True,  # agents meet other cameras than they trained on, on purpose
        bootstrap=config.bootstrap,
        image_metrics=config.image_metrics,
    )


def episode_rows(config: BenchmarkConfig, results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per agent episode: pipeline, algo, seed, domain, map, episode seed, expert-normalised score."""
    expert: dict[tuple[str, str, int], float] = {}
    for domain, episodes in results["episodes"]["expert"].items():
        for row in episodes:
            expert[(domain, row["map_name"], int(row["seed"]))] = float(row["distance_in_lane_m"])
    labels: dict[str, tuple[str, str, int]] = {}
    for trial in config.trials():
        labels[trial.name] = (trial.spec.name, trial.algo, trial.seed)
        if config.canonicalize and trial.spec.name == "raw":
            labels[f"{trial.algo}_{CANONICALIZED_LABEL}_s{trial.seed}"] = (CANONICALIZED_LABEL, trial.algo, trial.seed)
    rows = []
    for name, (label, algo, seed) in labels.items():
        if name not in results["episodes"]:
            raise InputError(f"the evaluation results lack agent {name!r}; rerun the evaluate stage")
        for domain, episodes in results["episodes"][name].items():
            for row in episodes:
                reference = expert[(domain, row["map_name"], int(row["seed"]))]
                if reference <= 0:
                    raise InputError(
                        f"the expert drove no distance in lane on {domain}/{row['map_name']}/{row['seed']}"
                    )
                rows.append(
                    {
                        "pipeline": label,
                        "algo": algo,
                        "seed": seed,
                        "domain": domain,
                        "map_name": row["map_name"],
                        "episode_seed": int(row["seed"]),
                        "score": float(row["distance_in_lane_m"]) / reference,
                        "distance_in_lane_m": float(row["distance_in_lane_m"]),
                    }
                )
    return rows


def evaluate_all(config: BenchmarkConfig, ray: RayOptions, *, progress: bool = True) -> dict[str, Any]:
    """Stage 2: the evaluation matrix (``<out>/matrix``)."""
    from agents.evaluate import evaluate

    for trial in config.trials():
        if not (trial.agent_path / "agent.json").exists():
            raise InputError(f"benchmark evaluate: {trial.agent_path} does not exist; run the train stage first")
    results = evaluate(eval_config(config), progress=progress, ray=ray)
    write_json_atomic(config.out_dir() / "matrix" / "agents.json", agent_fingerprints(config))
    return results


def agent_fingerprints(config: BenchmarkConfig) -> dict[str, str]:
    """SHA-256 of every evaluated agent's files, so a report never scores agents other than the evaluated ones."""
    import hashlib

    prints = {}
    for trial in config.trials():
        digest = hashlib.sha256()
        folder = trial.agent_path
        for name in agent_files(folder):
            digest.update(name.encode() + (folder / name).read_bytes())
        prints[trial.name] = digest.hexdigest()
    return prints


def agent_files(folder: Path) -> list[str]:
    """The files that make the agent in ``folder``: ``agent.json`` and the weights its loader reads.

    Not a PPO step folder's resume state (``ppo.zip`` beside ``policy.safetensors``,
    ``progress.json``). For the agent folders of the older layout these are all their files, so
    their fingerprints are the ones recorded then.
    """
    weights = "policy.safetensors" if (folder / "policy.safetensors").exists() else "ppo.zip"
    return sorted(name for name in ("agent.json", weights) if (folder / name).is_file())


# -- stage 3: statistics and report --------------------------------------------------------------


def analyse(config: BenchmarkConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the report, from the episode rows (IQM, intervals, P(improvement), budgets)."""
    from agents import statistics as st

    reps, seed = config.bootstrap, config.evaluation.seed
    out: dict[str, Any] = {"estimates": {}, "best": {}, "pairs": {}, "sentences": {}}
    for algo in config.algos:
        out["estimates"][algo], out["best"][algo], out["pairs"][algo], out["sentences"][algo] = {}, {}, {}, {}
        for domain in config.evaluation.domains:
            matrices = st.score_matrices(rows, algo, domain)
            estimates = st.interval_estimates(matrices, reps, seed)
            out["estimates"][algo][domain] = {k: dataclasses.asdict(v) for k, v in estimates.items()}
            if len(matrices) < 2:
                raise InputError(f"{algo} on {domain} has only pipeline {next(iter(matrices))!r}: nothing to compare")
            first, second = st.ranked(estimates)[:2]
            best = st.comparison(rows, algo, domain, matrices, estimates, first, second, reps, seed)
            out["best"][algo][domain] = _comparison_dict(best)
            out["pairs"][algo][domain] = {}
            for other in config.comparisons:
                if other == config.candidate:
                    continue
                x, y = config.candidate, other
                pair = st.comparison(rows, algo, domain, matrices, estimates, x, y, reps, seed)
                out["pairs"][algo][domain][f"{x} vs {y}"] = _comparison_dict(pair)
                out["sentences"][algo][f"{domain}: {x} vs {y}"] = st.certainty_sentence(pair)
            out["sentences"][algo][f"{domain}: best"] = st.certainty_sentence(best)
    return out


def frame_statistics(config: BenchmarkConfig, *, steps: int = 150, seed: int = 0) -> dict[str, dict[str, float]]:
    """What each pipeline shows the agent on one expert drive (small_loop, the same seed for all).

    Per pipeline, over the newest frame of every observation (after generator and preprocessing):
    mean intensity, contrast (pixel std), the frame-to-frame change (mean absolute difference of
    consecutive frames, in 0-255 units), and how far the frames are from the raw pipeline's
    (mean absolute difference on the same states). A translator that flickers raises the
    frame-to-frame change above raw's at equal motion; PPO's value targets and advantages then
    ride on that noise. PPO's env config is used where there is one (what PPO trained on).
    """
    from agents.episodes import run_episode
    from agents.expert import PurePursuitExpert

    algo = "ppo" if "ppo" in config.algos else next(iter(config.algos))
    run = _agent_run(config, config.trials()[0])[0]
    if run.algo != algo:
        run = _agent_run(config, next(t for t in config.trials() if t.algo == algo))[0]
    frames: dict[str, np.ndarray] = {}
    extra = [PipelineSpec(label, "sim2real", checkpoint) for label, checkpoint in config.frame_diagnostics.items()]
    for spec in (*config.pipelines, *extra):
        pipeline = run.pipeline(spec.pipeline, checkpoint=spec.checkpoint)
        env = pipeline.make_env(map_name="small_loop", episode_length=steps, threads=1)
        expert = PurePursuitExpert()
        seen: list[np.ndarray] = []

        def drive(obs: np.ndarray, env: Any = env, expert: Any = expert) -> np.ndarray:
            return expert.act(env)

        def record(obs: np.ndarray, info: dict[str, Any], seen: list[np.ndarray] = seen) -> None:
            seen.append(obs[..., -3:])

        run_episode(env, drive, seed, on_step=record)
        env.close()
        frames[spec.name] = np.stack(seen).astype(np.float32)
    raw = frames.get("raw")
    out = {}
    if config.real_dir:
        out["real camera (train split)"] = _real_frame_statistics(Path(config.real_dir), run, seed)
    for name, stack in frames.items():
        length = min(len(stack), len(raw)) if raw is not None else len(stack)
        out[name] = {
            "mean": float(stack.mean()),
            "contrast": float(stack.std()),
            "frame_change": float(np.abs(np.diff(stack, axis=0)).mean()),
            "distance_from_raw": float(np.abs(stack[:length] - raw[:length]).mean()) if raw is not None else math.nan,
        }
    return out


def _real_frame_statistics(root: Path, run: Any, seed: int, count: int = 400) -> dict[str, float]:
    """Mean and contrast of real frames as an agent would see them (camera size, crop, resize)."""
    import cv2

    from generators.data import FolderSpec, list_images
    from sim2real_env.frames import resize_frames

    if not root.is_dir():
        raise InputError(f"benchmark real_dir {root} is not a folder of real frames")
    paths = list_images(FolderSpec(str(root), split="train"))
    picked = np.random.default_rng(seed).choice(len(paths), size=min(count, len(paths)), replace=False)
    pipeline = run.pipeline("raw")
    config, pre = pipeline.env_config(), pipeline.preprocess
    frames = []
    for index in picked:
        image = cv2.imread(str(paths[int(index)]), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"real frame {paths[int(index)]} does not decode")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    size = (config.camera_height, config.camera_width)
    stack = np.stack([resize_frames(frame[None], size)[0] for frame in frames])  # real frames differ in size
    seen = resize_frames(np.ascontiguousarray(stack[:, pre.crop_top :]), pre.resize).astype(np.float32)
    nan = math.nan
    return {"mean": float(seen.mean()), "contrast": float(seen.std()), "frame_change": nan, "distance_from_raw": nan}


def _comparison_dict(comparison: Any) -> dict[str, Any]:
    data = dataclasses.asdict(comparison)
    data["significant"] = comparison.significant
    data["improvement_likely"] = comparison.improvement_likely
    return data


def _plots(config: BenchmarkConfig, rows: list[dict[str, Any]], analysis: dict[str, Any], out: Path) -> list[str]:
    from agents import statistics as st

    written = []
    for algo in config.algos:
        for domain in config.evaluation.domains:
            profile = st.plot_performance_profiles(
                rows, algo, domain, out / f"profile_{algo}_{domain}.png", reps=config.bootstrap
            )
            estimates = {
                name: st.Estimates(st.Interval(**e["iqm"]), st.Interval(**e["mean"]))
                for name, e in analysis["estimates"][algo][domain].items()
            }
            iqm = st.plot_interval_estimates(estimates, out / f"iqm_{algo}_{domain}.png", f"{algo.upper()} on {domain}")
            written += [profile.name, iqm.name]
    if "ppo" in config.algos:
        written.append(_plot_ppo_curves(config, out / "ppo_learning_curves.png"))
    return written


def _plot_ppo_curves(config: BenchmarkConfig, path: Path) -> str:
    """PPO evaluations, value loss and entropy against env steps, per pipeline (seeds as thin lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.provenance import write_bytes_atomic

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, spec in enumerate(config.pipelines):
        colour = colours[index % len(colours)]
        for k, trial in enumerate(t for t in config.trials() if t.algo == "ppo" and t.spec.name == spec.name):
            progress_file = trial.out / "progress.json"
            if not progress_file.exists():
                continue
            state = json.loads(progress_file.read_text())
            label = spec.name if k == 0 else None
            evaluations = state.get("evaluations", [])
            axes[0].plot(
                [e["env_steps"] for e in evaluations],
                [e["distance_in_lane_m"] for e in evaluations],
                color=colour,
                label=label,
                alpha=0.8,
            )
            updates = state.get("updates", [])
            axes[1].plot(
                [u["env_steps"] for u in updates], [u.get("value_loss") for u in updates], color=colour, alpha=0.6
            )
            axes[2].plot(
                [u["env_steps"] for u in updates], [u.get("entropy_loss") for u in updates], color=colour, alpha=0.6
            )
    axes[0].set(xlabel="env steps", ylabel="eval distance in lane (m)", title="PPO evaluations (0 = cloned actor)")
    axes[1].set(xlabel="env steps", ylabel="value loss", yscale="log", title="critic")
    axes[2].set(xlabel="env steps", ylabel="entropy loss", title="policy entropy (SB3: -entropy)")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path.name


def headline_sentences(config: BenchmarkConfig, analysis: dict[str, Any]) -> list[str]:
    """Per algorithm and domain: the best pipeline's lead, and the candidate against the first comparison."""
    sentences: list[str] = []
    for algo in config.algos:
        for domain in config.evaluation.domains:
            for key in (f"{domain}: best", f"{domain}: {config.candidate} vs {config.comparisons[0]}"):
                sentence = analysis["sentences"][algo].get(key)
                if sentence and sentence not in sentences:
                    sentences.append(sentence)
    return sentences


def _fmt(interval: dict[str, float]) -> str:
    return f"{interval['point']:.2f} [{interval['low']:.2f}, {interval['high']:.2f}]"


def render_report(config: BenchmarkConfig, results: dict[str, Any]) -> str:
    """``report.md``: the verdict table first, then IQM tables, comparisons, budgets, diagnostics."""
    analysis, training = results["analysis"], results["training"]
    prov = results["provenance"]
    spec = config.evaluation
    labels = [p.name for p in config.pipelines] + ([CANONICALIZED_LABEL] if config.canonicalize else [])
    frame_rate = float(_agent_run(config, config.trials()[0])[1].env_config().frame_rate)
    lines = [
        f"# Transfer benchmark: {config.name}",
        "",
        f"Produced by `{prov['command']}` (config `{results['config_path']}`) at git `{prov['git_sha']}`. "
        f"{len(config.seeds)} training seeds per agent; every agent drives {spec.episodes} episodes on each of "
        f"{len(spec.maps)} maps ({', '.join(spec.maps)}) in every domain, {spec.episode_frames} simulator frames "
        f"({spec.episode_frames / frame_rate:.1f} s) each, the same episode seeds for every agent: "
        f"{len(config.seeds) * spec.episodes * len(spec.maps)} episodes per pipeline and domain. "
        "Score: distance driven in lane before first leaving it, as a share of the privileged expert's on the "
        "same domain, map and seed. Aggregates: interquartile mean (IQM) with 95% stratified-bootstrap intervals "
        f"({config.bootstrap} resamples), probability of improvement, performance profiles (`rliable`; "
        "Agarwal et al. 2021). Stage wall times (the last run of each): "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in results["wall_s"].items())
        + f"; the {len(training)} agents took {sum(r['wall_s'] for r in training) / 60:.0f} min of training "
        "wall time in all, each measured by its own run (a train stage that finds the agents done reuses them).",
        "",
        "## Verdict: the best pipeline per domain",
        "",
        "Significant: the best pipeline's 95% IQM interval does not overlap the runner-up's; overlapping "
        "intervals mean this run did not show a difference, not that there is none. The best pipeline is picked "
        "after the fact from all of them, so a lead without significance is a hint at most. P(best > runner-up) "
        "is rliable's probability of improvement: that a random training seed of the best pipeline scores above "
        "one of the runner-up on a random map. Intervals resample training seeds within each map (rliable's "
        "stratified bootstrap over a seeds x maps matrix of per-map mean scores), so they carry the variance "
        "between training runs. A score above 1 means driving further in lane than the expert in the same time "
        "(the agents are faster than the expert), not driving better.",
        "",
        "| algo | domain | best | IQM | runner-up | IQM | significant | P(best > runner-up) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for algo in config.algos:
        for domain in spec.domains:
            b = analysis["best"][algo][domain]
            lines.append(
                f"| {algo} | {domain} | **{b['best']}** | {_fmt(b['best_iqm'])} | {b['runner_up']} | "
                f"{_fmt(b['runner_up_iqm'])} | {'yes' if b['significant'] else 'no'} | {_fmt(b['improvement'])} |"
            )
    lines += ["", "## How certain: in words", ""]
    lines += [f"- {sentence}" for sentence in headline_sentences(config, analysis)]
    for algo in config.algos:
        lines += [
            "",
            f"## {algo.upper()}: IQM of the expert-normalised score [95% CI]",
            "",
            "| pipeline | " + " | ".join(spec.domains) + " |",
            "|---|" + "---|" * len(spec.domains),
        ]
        for label in labels:
            cells = [_fmt(analysis["estimates"][algo][d][label]["iqm"]) for d in spec.domains]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"### {algo.upper()}: {config.candidate} against the baselines, P({config.candidate} > other) [95% CI]",
            "",
            "| other | " + " | ".join(spec.domains) + " |",
            "|---|" + "---|" * len(spec.domains),
        ]
        for other in config.comparisons:
            if other == config.candidate:
                continue
            key = f"{config.candidate} vs {other}"
            cells = []
            for domain in spec.domains:
                pair = analysis["pairs"][algo][domain][key]
                mark = " (IQM CIs apart)" if pair["significant"] else ""
                cells.append(_fmt(pair["improvement"]) + mark)
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    lines += _ppo_section(config, results)
    lines += _frames_section(results)
    lines += _budget_section(config, training)
    lines += [
        "",
        "## Files",
        "",
        "- `results.json`: every episode row, every estimate, the training table, the config and provenance.",
        "- `profile_<algo>_<domain>.png`: performance profiles (share of runs above each score), with bands.",
        "- `iqm_<algo>_<domain>.png`: IQM and mean per pipeline with 95% intervals.",
        "- `ppo_learning_curves.png`: PPO evaluations, value loss and entropy per pipeline and seed.",
        "- `matrix/`: the evaluation harness's own report (per-agent means, every measure, what each agent sees).",
    ]
    return "\n".join(lines) + "\n"


def _ppo_section(config: BenchmarkConfig, results: dict[str, Any]) -> list[str]:
    if "ppo" not in config.algos:
        return []
    analysis = results["analysis"]
    domain = config.evaluation.domains[0]
    lines = ["", f"## PPO through the wrapper ({domain})", ""]
    estimates = analysis["estimates"]["ppo"][domain]
    if "raw" in estimates and config.candidate in estimates:
        raw, candidate = estimates["raw"]["iqm"], estimates[config.candidate]["iqm"]
        ratio = candidate["point"] / raw["point"] if raw["point"] > 0 else math.nan
        pair = analysis["pairs"]["ppo"][domain].get(f"{config.candidate} vs raw")
        chance = f"; P({config.candidate} > raw) = {_fmt(pair['improvement'])}" if pair else ""
        lines.append(
            f"IQM of PPO {config.candidate} on {domain}: {_fmt(candidate)}, of PPO raw {_fmt(raw)}: a ratio of "
            f"{ratio:.2f} of the point estimates (target: within 10%, i.e. >= 0.90; "
            f"{'met' if ratio >= 0.9 else 'missed'} by the point estimates, and the intervals "
            f"{'overlap' if candidate['low'] <= raw['high'] and raw['low'] <= candidate['high'] else 'do not overlap'})"
            f"{chance}."
        )
    lines += [
        "",
        "Training diagnostics per pipeline (means over seeds of the last update's SB3 logs; "
        "best evaluation over the run, in m in lane on the training map):",
        "",
        "| pipeline | cloned actor (step 0) m | best eval m | at steps | value loss | explained var. | entropy loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in config.pipelines:
        start, best, at, value, explained, entropy = [], [], [], [], [], []
        for trial in config.trials():
            if trial.algo != "ppo" or trial.spec.name != spec.name or not (trial.out / "progress.json").exists():
                continue
            state = json.loads((trial.out / "progress.json").read_text())
            evaluations = state.get("evaluations", [])
            if evaluations and evaluations[0]["env_steps"] == 0:
                start.append(evaluations[0]["distance_in_lane_m"])
            if state.get("best"):
                best.append(state["best"]["distance_in_lane_m"])
                at.append(state["best"]["env_steps"])
            if state.get("updates"):
                last = state["updates"][-1]
                value.append(last.get("value_loss", math.nan))
                explained.append(last.get("explained_variance", math.nan))
                entropy.append(last.get("entropy_loss", math.nan))

        def mean(values: list[float], digits: int = 2) -> str:
            return f"{float(np.mean(values)):.{digits}f}" if values else "n/a"

        lines.append(
            f"| {spec.name} | {mean(start)} | {mean(best)} | {mean(at, 0)} | {mean(value)} | {mean(explained)} | "
            f"{mean(entropy)} |"
        )
    return lines


def _frames_section(results: dict[str, Any]) -> list[str]:
    frames = results.get("frames")
    if not frames:
        return []
    lines = [
        "",
        "### What the agent sees: frame statistics on one expert drive (small_loop, 0-255 units)",
        "",
        "| pipeline | mean | contrast (std) | frame-to-frame change | distance from raw frames |",
        "|---|---|---|---|---|",
    ]
    for name, f in frames.items():
        lines.append(
            f"| {name} | {f['mean']:.1f} | {f['contrast']:.1f} | {f['frame_change']:.2f} "
            f"| {f['distance_from_raw']:.1f} |"
        )
    return lines


def _budget_section(config: BenchmarkConfig, training: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Training budgets (equal for every pipeline)", ""]
    for algo, algo_spec in config.algos.items():
        overrides = " ".join(algo_spec.overrides)
        lines.append(
            f"- **{algo}**: `{algo_spec.config}` with `{overrides}` and `{algo}.seed` in {list(config.seeds)}."
        )
    lines += ["", "| algo | pipeline | mean wall s per agent | data | trained at git |", "|---|---|---|---|---|"]
    for algo in config.algos:
        for spec in config.pipelines:
            rows = [r for r in training if r["algo"] == algo and r["pipeline"] == spec.name]
            if not rows:
                lines.append(f"| {algo} | {spec.name} | n/a | n/a | n/a |")
                continue
            wall = float(np.mean([r["wall_s"] for r in rows]))
            if algo == "bc":
                data = f"{int(np.mean([r.get('samples') or 0 for r in rows]))} labelled frames"
            else:
                steps = int(np.mean([r.get("env_steps") or 0 for r in rows]))
                cloned = int(np.mean([r.get("bc_init_samples") or 0 for r in rows]))
                data = f"{steps} env steps + {cloned} cloned frames"
            shas = sorted({str(r.get("git_sha"))[:10] for r in rows})
            lines.append(f"| {algo} | {spec.name} | {wall:.0f} | {data} | {', '.join(shas)} |")
    return lines


def run_benchmark(
    config: BenchmarkConfig,
    *,
    config_path: str = "",
    stages: tuple[str, ...] = STAGES,
    ray: RayOptions | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the stages and write ``<out>/report.md`` and ``results.json``; returns the results."""
    for stage in stages:
        resolve_name("benchmark stage", stage, STAGES)
    ray = ray or RayOptions()
    out = config.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    wall: dict[str, float] = dict(previous.get("wall_s", {}))
    started = time.perf_counter()
    training = train_all(config, ray, progress=progress) if "train" in stages else trained_rows(config)
    if "train" in stages:
        wall["train"] = time.perf_counter() - started
        if set(stages) == {"train"}:
            return {"training": training, "wall_s": wall}
    matrix = out / "matrix" / "results.json"
    if "evaluate" in stages:
        started = time.perf_counter()
        evaluation = evaluate_all(config, ray, progress=progress)
        wall["evaluate"] = time.perf_counter() - started
    elif matrix.exists():
        evaluation = json.loads(matrix.read_text())
        stored = out / "matrix" / "agents.json"
        now = agent_fingerprints(config)
        evaluated = json.loads(stored.read_text()) if stored.exists() else {}
        changed = sorted(name for name in now if evaluated.get(name) != now[name])
        if changed:
            raise InputError(
                f"benchmark report: {len(changed)} agent(s) differ from the ones {matrix} scored (first: "
                f"{changed[0]}); run the evaluate stage again"
            )
    else:
        raise InputError(f"benchmark: {matrix} does not exist; run the evaluate stage")
    rows = episode_rows(config, evaluation)
    results: dict[str, Any] = {
        "config": _config_to_json(config),
        "config_path": config_path,
        "training": training,
        "episodes": rows,
        "wall_s": wall,
        "provenance": provenance(),
        "evaluation_provenance": evaluation.get("provenance"),
    }
    if "report" in stages or "evaluate" in stages:
        started = time.perf_counter()
        results["analysis"] = analyse(config, rows)
        results["frames"] = frame_statistics(config)
        results["plots"] = _plots(config, rows, results["analysis"], out)
        wall["report"] = time.perf_counter() - started
        write_json_atomic(out / "results.json", results)
        write_text_atomic(out / "report.md", render_report(config, results))
    return results
