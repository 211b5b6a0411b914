"""Statistics of the transfer benchmark with rliable (Agarwal et al. 2021): IQM, bootstrap CIs, P(improvement).

A handful of training seeds is too few for a mean +- std to say which pipeline transfers best, so
the benchmark reports what Agarwal et al. recommend: the interquartile mean (IQM) over all runs
and episodes, with 95% *stratified* bootstrap intervals (runs resampled within each task), the
probability that one pipeline beats another on a random episode, and performance profiles.
Every number comes from rliable; this module only shapes the episode rows into its matrices.

Input rows are plain dicts, one per evaluation episode::

    {"pipeline": "sim2real", "algo": "bc", "seed": 0, "domain": "real_proxy_image",
     "map_name": "loop_empty", "episode_seed": 7, "score": 0.62}

``score`` is the episode's in-lane distance over the privileged expert's on the same domain, map
and episode seed. A *run* is a training seed; a *task* is a ``(map_name, episode_seed)`` pair,
the same for every agent. Example::

    comparisons = best_per_domain(rows, "bc", reps=2000, seed=0)
    for comparison in comparisons.values():
        print(certainty_sentence(comparison))

Reproducibility: rliable 1.2 draws its bootstrap indices from numpy's *global* RNG
(``np.random.choice`` in ``StratifiedBootstrap.update_indices``) and ignores ``random_state``
there, so every estimate here seeds the global RNG for the call and restores its state after.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rliable import library as rly
from rliable import metrics

from sim2real_env.errors import ConfigError, InputError
from sim2real_env.names import unknown_name_message
from sim2real_env.provenance import write_bytes_atomic

#: Keys every episode row must carry.
ROW_KEYS = ("pipeline", "algo", "seed", "domain", "map_name", "episode_seed", "score")
#: Coverage of every interval reported here.
CONFIDENCE = 0.95
#: Bootstrap replications by default: rliable's 50000 takes minutes for P(improvement), which runs a
#: Mann-Whitney U test per task per replication; 2000 keeps the CI ends stable to about 0.01.
DEFAULT_REPS = 2000

Task = tuple[str, int]
"""``(map_name, episode_seed)``: one evaluation episode, run by every agent."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% bootstrap interval."""

    point: float
    low: float
    high: float

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point (touching ends count as overlapping)."""
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class Estimates:
    """Aggregate scores of one pipeline: the IQM (what we rank by) and the mean."""

    iqm: Interval
    mean: Interval


@dataclass(frozen=True)
class Comparison:
    """The best pipeline of one domain against the runner-up, with how sure we are of the order.

    "Significant" means the two IQM intervals do not overlap; overlapping intervals mean this run did
    not show a difference, not that there is none. ``improvement_likely``
    is the weaker statement that the lower end of P(best > runner-up) is above 0.5.
    """

    algo: str
    domain: str
    best: str
    best_iqm: Interval
    runner_up: str
    runner_up_iqm: Interval
    #: P(best > runner-up) on a random episode, with its 95% interval.
    improvement: Interval
    best_seeds: int
    runner_up_seeds: int
    #: Evaluation episodes per training seed (tasks), over ``num_maps`` maps.
    num_episodes: int
    num_maps: int
    reps: int

    @property
    def intervals_overlap(self) -> bool:
        """Whether the IQM intervals of best and runner-up overlap."""
        return self.best_iqm.overlaps(self.runner_up_iqm)

    @property
    def significant(self) -> bool:
        """The IQM intervals do not overlap."""
        return not self.intervals_overlap

    @property
    def improvement_likely(self) -> bool:
        """The lower end of P(best > runner-up)'s interval is above 0.5."""
        return self.improvement.low > 0.5


@contextlib.contextmanager
def _global_rng(seed: int, *names: str) -> Iterator[None]:
    """Seed numpy's global RNG (what rliable draws from) for a block, then restore the caller's state.

    The seed is derived from ``seed`` and ``names`` so that one pipeline's interval does not
    change when another pipeline is added to or removed from the benchmark.
    """
    entropy = [int(seed), *(byte for name in names for byte in (*name.encode("utf-8"), 0))]
    derived = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    saved = np.random.get_state()
    np.random.seed(derived)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _check_reps(reps: int) -> None:
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise ConfigError(f"reps must be a positive int (bootstrap replications), got {reps!r}")


def _row_field(row: Mapping[str, Any], index: int) -> tuple[str, str, int, str, Task, float]:
    """``(pipeline, algo, seed, domain, task, score)`` of one row, or an InputError naming the row."""
    missing = [key for key in ROW_KEYS if key not in row]
    if missing:
        raise InputError(f"episode row {index} lacks {', '.join(missing)}; rows need {', '.join(ROW_KEYS)}: {row!r}")
    try:
        task = (str(row["map_name"]), int(row["episode_seed"]))
        return str(row["pipeline"]), str(row["algo"]), int(row["seed"]), str(row["domain"]), task, float(row["score"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"episode row {index} has a value of the wrong type ({exc}): {row!r}") from exc


def score_matrices(rows: Sequence[Mapping[str, Any]], algo: str, domain: str) -> dict[str, np.ndarray]:
    """Per pipeline, the ``(num_runs, num_tasks)`` float64 scores of ``algo`` on ``domain``: rliable's input.

    Rows are training seeds (ascending), columns are maps (sorted), each cell the mean score of
    that seed's episodes on that map: rliable's runs x tasks, as in Agarwal et al. (a run's score on
    a task is its mean over evaluation episodes). Episodes are not tasks of their own: the
    stratified bootstrap resamples runs independently per task, and with episodes as tasks a weak
    training seed would be resampled away episode by episode, giving intervals far too narrow for
    the between-seed variance. Every pipeline and seed must have the same (map, episode seed)
    episodes; pipelines are in sorted order. Raises ``InputError`` naming
    the pipeline when a (seed, task) cell is missing or repeated, a score is NaN or infinite, or
    pipelines were evaluated on different tasks: rliable would silently average over a ragged or
    mismatched matrix.
    """
    cells: dict[str, dict[tuple[int, Task], float]] = {}
    for index, row in enumerate(rows):
        pipeline, row_algo, seed, row_domain, task, score = _row_field(row, index)
        if row_algo != algo or row_domain != domain:
            continue
        if not math.isfinite(score):
            raise InputError(
                f"pipeline {pipeline!r} ({algo} on {domain}) has score {score} at training seed {seed}, "
                f"map {task[0]!r}, episode seed {task[1]}: scores must be finite"
            )
        pipeline_cells = cells.setdefault(pipeline, {})
        if (seed, task) in pipeline_cells:
            raise InputError(
                f"pipeline {pipeline!r} ({algo} on {domain}) has two scores for training seed {seed}, "
                f"map {task[0]!r}, episode seed {task[1]}"
            )
        pipeline_cells[(seed, task)] = score
    if not cells:
        pairs = sorted({(str(row.get("algo")), str(row.get("domain"))) for row in rows})
        raise InputError(f"no episode rows for algo {algo!r} on domain {domain!r}; rows have (algo, domain) {pairs}")

    matrices: dict[str, np.ndarray] = {}
    reference: tuple[str, list[Task]] | None = None
    for pipeline in sorted(cells):
        pipeline_cells = cells[pipeline]
        seeds = sorted({seed for seed, _ in pipeline_cells})
        tasks = sorted({task for _, task in pipeline_cells})
        missing = [(seed, task) for seed in seeds for task in tasks if (seed, task) not in pipeline_cells]
        if missing:
            shown = ", ".join(f"seed {seed} map {task[0]!r} episode {task[1]}" for seed, task in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputError(
                f"pipeline {pipeline!r} ({algo} on {domain}) lacks {len(missing)} (training seed, task) cells: "
                f"{shown}{more}; every training seed must be evaluated on every episode"
            )
        if reference is None:
            reference = (pipeline, tasks)
        elif tasks != reference[1]:
            only_here = sorted(set(tasks) - set(reference[1]))[:5]
            only_there = sorted(set(reference[1]) - set(tasks))[:5]
            raise InputError(
                f"pipeline {pipeline!r} ({algo} on {domain}) was evaluated on other episodes than "
                f"{reference[0]!r}: only in {pipeline!r} {only_here}, only in {reference[0]!r} {only_there} "
                "(first five (map, episode seed) of each); every pipeline needs the same episodes"
            )
        maps = sorted({map_name for map_name, _ in tasks})
        matrices[pipeline] = np.array(
            [
                [np.mean([pipeline_cells[(seed, task)] for task in tasks if task[0] == map_name]) for map_name in maps]
                for seed in seeds
            ],
            dtype=np.float64,
        )
    return matrices


def _iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    """``[IQM, mean]`` of a ``(num_runs, num_tasks)`` matrix: the aggregate rliable bootstraps."""
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores)])


def interval_estimates(
    matrices: Mapping[str, np.ndarray], reps: int = DEFAULT_REPS, seed: int = 0
) -> dict[str, Estimates]:
    """IQM and mean of each pipeline with 95% stratified bootstrap intervals (training seeds resampled per map).

    Same ``matrices``, ``reps`` and ``seed`` give the same intervals; each pipeline's resampling is
    seeded from ``seed`` and its name, so it does not depend on which other pipelines are present.
    """
    _check_reps(reps)
    estimates: dict[str, Estimates] = {}
    for pipeline, scores in matrices.items():
        with _global_rng(seed, pipeline):
            points, intervals = rly.get_interval_estimates(
                {pipeline: scores}, _iqm_and_mean, reps=reps, confidence_interval_size=CONFIDENCE
            )
        point, interval = points[pipeline], intervals[pipeline]  # (2,) and (2 low/high, 2 metrics)
        estimates[pipeline] = Estimates(
            iqm=Interval(float(point[0]), float(interval[0, 0]), float(interval[1, 0])),
            mean=Interval(float(point[1]), float(interval[0, 1]), float(interval[1, 1])),
        )
    return estimates


def probability_of_improvement(
    matrices: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], reps: int = DEFAULT_REPS, seed: int = 0
) -> dict[tuple[str, str], Interval]:
    """For each ``(x, y)``, P(x > y) on a random episode (Mann-Whitney per task, averaged) with its 95% interval.

    The runs of ``x`` and ``y`` are resampled independently within each task (rliable's paired
    input). Costly: one U test per task per replication.
    """
    _check_reps(reps)
    found: dict[tuple[str, str], Interval] = {}
    for x, y in pairs:
        for name in (x, y):
            if name not in matrices:
                raise ConfigError(unknown_name_message("pipeline", name, matrices))
        if x == y:
            raise ConfigError(f"probability of improvement needs two different pipelines, got {x!r} twice")
        key = f"{x},{y}"
        with _global_rng(seed, x, y):
            points, intervals = rly.get_interval_estimates(
                {key: [matrices[x], matrices[y]]},
                metrics.probability_of_improvement,
                reps=reps,
                confidence_interval_size=CONFIDENCE,
            )
        interval = np.asarray(intervals[key]).reshape(2)  # (2 low/high, 1)
        found[(x, y)] = Interval(float(points[key]), float(interval[0]), float(interval[1]))
    return found


def _episode_counts(rows: Sequence[Mapping[str, Any]], algo: str, domain: str) -> tuple[int, int]:
    """``(num_tasks, num_maps)`` of ``algo`` on ``domain``; call after :func:`score_matrices` validated the rows."""
    tasks = {
        (str(row["map_name"]), int(row["episode_seed"]))
        for row in rows
        if str(row["algo"]) == algo and str(row["domain"]) == domain
    }
    return len(tasks), len({map_name for map_name, _ in tasks})


def ranked(estimates: Mapping[str, Estimates]) -> list[str]:
    """Pipelines by IQM, best first (ties by name)."""
    return sorted(estimates, key=lambda pipeline: (-estimates[pipeline].iqm.point, pipeline))


def comparison(
    rows: Sequence[Mapping[str, Any]],
    algo: str,
    domain: str,
    matrices: Mapping[str, np.ndarray],
    estimates: Mapping[str, Estimates],
    first: str,
    second: str,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Comparison:
    """``first`` against ``second`` (in :class:`Comparison`'s best / runner-up fields, whichever leads).

    ``matrices`` and ``estimates`` are those of ``rows`` for ``algo`` on ``domain``, computed once by
    the caller and shared by all its comparisons.
    """
    improvement = probability_of_improvement(matrices, [(first, second)], reps, seed)[(first, second)]
    num_episodes, num_maps = _episode_counts(rows, algo, domain)
    return Comparison(
        algo=algo,
        domain=domain,
        best=first,
        best_iqm=estimates[first].iqm,
        runner_up=second,
        runner_up_iqm=estimates[second].iqm,
        improvement=improvement,
        best_seeds=matrices[first].shape[0],
        runner_up_seeds=matrices[second].shape[0],
        num_episodes=num_episodes,
        num_maps=num_maps,
        reps=reps,
    )


def compare(
    rows: Sequence[Mapping[str, Any]], algo: str, domain: str, reps: int = DEFAULT_REPS, seed: int = 0
) -> Comparison:
    """The best pipeline of ``algo`` on ``domain`` by IQM against the runner-up; see :class:`Comparison`.

    Raises ``InputError`` when the domain has fewer than two pipelines (nothing to compare).
    """
    matrices = score_matrices(rows, algo, domain)
    if len(matrices) < 2:
        raise InputError(
            f"{algo} on {domain} has only pipeline {next(iter(matrices))!r}: a comparison needs two or more"
        )
    estimates = interval_estimates(matrices, reps, seed)
    best, runner_up = ranked(estimates)[:2]
    return comparison(rows, algo, domain, matrices, estimates, best, runner_up, reps, seed)


def best_per_domain(
    rows: Sequence[Mapping[str, Any]], algo: str, reps: int = DEFAULT_REPS, seed: int = 0
) -> dict[str, Comparison]:
    """:func:`compare` for every domain ``algo`` was evaluated on, keyed by domain (sorted)."""
    domains = sorted({str(row["domain"]) for row in rows if "domain" in row and str(row.get("algo")) == algo})
    if not domains:
        algos = sorted({str(row.get("algo")) for row in rows})
        raise InputError(f"no episode rows for algo {algo!r}; rows have algos {algos}")
    return {domain: compare(rows, algo, domain, reps, seed) for domain in domains}


def certainty_sentence(comparison: Comparison) -> str:
    """One plain-English sentence: who is best on the domain, by how much, and how sure we are.

    Example: "On real_proxy_image, BC sim2real drives 0.62 of the expert's in-lane distance (IQM,
    95% CI 0.50-0.71) against raw's 0.41 (0.30-0.55): the intervals overlap, so this run does not
    show a difference (3 training seeds x 21 episodes on 3 maps); P(sim2real > raw) = 0.68 (0.55-0.80)."
    """
    c = comparison
    if c.intervals_overlap:
        verdict = "the intervals overlap, so this run does not show a difference"
    else:
        verdict = "the intervals do not overlap, so the difference is significant"
    if c.best_seeds == c.runner_up_seeds:
        seeds = f"{c.best_seeds} training seed{'s' if c.best_seeds != 1 else ''}"
    else:
        seeds = f"{c.best_seeds} ({c.best}) and {c.runner_up_seeds} ({c.runner_up}) training seeds"
    design = (
        f"{seeds} x {c.num_episodes} episode{'s' if c.num_episodes != 1 else ''} "
        f"on {c.num_maps} map{'s' if c.num_maps != 1 else ''}"
    )
    likely = "" if c.improvement_likely else ", an interval that reaches 0.5 or below"
    return (
        f"On {c.domain}, {c.algo.upper()} {c.best} drives {c.best_iqm.point:.2f} of the expert's in-lane distance "
        f"(IQM, 95% CI {c.best_iqm.low:.2f}-{c.best_iqm.high:.2f}) against {c.runner_up}'s "
        f"{c.runner_up_iqm.point:.2f} ({c.runner_up_iqm.low:.2f}-{c.runner_up_iqm.high:.2f}): {verdict} ({design}); "
        f"P({c.best} > {c.runner_up}) = {c.improvement.point:.2f} "
        f"({c.improvement.low:.2f}-{c.improvement.high:.2f}){likely}."
    )


# -- plots ---------------------------------------------------------------------------------------


def _save_figure(figure: Any, path: Path) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically (temp file in the same folder + rename), then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _plot_utils() -> Any:
    """The plotting module of rliable, on the Agg backend (headless: the benchmark runs on servers)."""
    import matplotlib

    matplotlib.use("Agg")
    from rliable import plot_utils

    return plot_utils


def plot_performance_profiles(
    rows: Sequence[Mapping[str, Any]],
    algo: str,
    domain: str,
    path: str | Path,
    thresholds: Sequence[float] | np.ndarray | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Path:
    """PNG of rliable's score-distribution profiles: the fraction of runs x episodes with score > tau, per pipeline.

    A profile shows the whole distribution, so a pipeline that fails often but drives well when
    it does is told apart from one that is uniformly mediocre (the IQM alone hides that).
    ``thresholds`` defaults to 101 values from 0 to max(1, highest score); bands are 95% CIs.
    """
    _check_reps(reps)
    matrices = score_matrices(rows, algo, domain)
    if thresholds is None:
        top = max(1.0, *(float(scores.max()) for scores in matrices.values()))
        taus = np.linspace(0.0, top, 101)
    else:
        taus = np.asarray(thresholds, dtype=np.float64)
        if taus.ndim != 1 or taus.size < 2 or not np.all(np.isfinite(taus)) or np.any(np.diff(taus) <= 0):
            raise ConfigError(f"thresholds must be two or more finite increasing values, got {thresholds!r}")
    plot_utils = _plot_utils()
    import matplotlib.pyplot as plt

    with _global_rng(seed, "performance_profile", *matrices):
        profiles, profile_cis = rly.create_performance_profile(
            matrices, taus, reps=reps, confidence_interval_size=CONFIDENCE
        )
    figure, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=profile_cis,
        ax=ax,
        xlabel=r"score / expert's in-lane distance ($\tau$)",
        ylabel=r"fraction of runs with score $> \tau$",
        legend=True,
    )
    ax.set_title(f"{algo.upper()} on {domain}")
    return _save_figure(figure, Path(path))


def plot_interval_estimates(estimates: Mapping[str, Estimates], path: str | Path, title: str = "") -> Path:
    """PNG of the IQM and mean of each pipeline with their 95% intervals (from :func:`interval_estimates`)."""
    if not estimates:
        raise InputError(f"nothing to plot at {path}: no pipelines in the estimates")
    plot_utils = _plot_utils()
    names = sorted(estimates)
    points = {name: np.array([estimates[name].iqm.point, estimates[name].mean.point]) for name in names}
    intervals = {
        name: np.array(
            [[estimates[name].iqm.low, estimates[name].mean.low], [estimates[name].iqm.high, estimates[name].mean.high]]
        )
        for name in names
    }
    # rliable sizes the figure by rows (row_height * pipelines) and places the x label in figure
    # fractions: keep at least 2 inches of height and put label and title a fixed distance away.
    row_height = max(0.6, 2.0 / len(names))
    height = row_height * len(names)
    figure, _ = plot_utils.plot_interval_estimates(
        points,
        intervals,
        metric_names=["IQM", "Mean"],
        algorithms=names,
        xlabel="score / expert's in-lane distance",
        row_height=row_height,
        subfigure_width=4.0,
        max_ticks=4,
        xlabel_y_coordinate=-0.55 / height,
        wspace=0.2,
    )
    if title:
        figure.suptitle(title, y=1.0 + 0.55 / height, fontsize="xx-large")
    return _save_figure(figure, Path(path))
