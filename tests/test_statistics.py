"""agents.statistics: rliable IQM / CIs / P(improvement) on synthetic episode rows (no simulator)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from agents.statistics import (
    Comparison,
    Interval,
    best_per_domain,
    certainty_sentence,
    compare,
    interval_estimates,
    plot_interval_estimates,
    plot_performance_profiles,
    probability_of_improvement,
    score_matrices,
)
from sim2real_env.errors import InputError

MAPS = ("loop_empty", "small_loop", "zigzag_dists")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Few replications: enough to separate 0.9 from 0.3, and P(improvement) runs a U test per task per rep.
REPS = 100


def make_rows(
    means: dict[str, float],
    *,
    seeds: int = 3,
    episodes_per_map: int = 10,
    spread: float = 0.02,
    algo: str = "bc",
    domain: str = "real_proxy_image",
    rng_seed: int = 0,
) -> list[dict]:
    """One row per (pipeline, training seed, map, episode seed), scores ~ N(mean, spread)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for pipeline, mean in means.items():
        for seed in range(seeds):
            for map_name in MAPS:
                for episode_seed in range(episodes_per_map):
                    rows.append(
                        {
                            "pipeline": pipeline,
                            "algo": algo,
                            "seed": seed,
                            "domain": domain,
                            "map_name": map_name,
                            "episode_seed": 100 + episode_seed,
                            "score": float(rng.normal(mean, spread)),
                        }
                    )
    return rows


def test_score_matrices_shape_and_task_order():
    rows = make_rows({"raw": 0.3, "sim2real": 0.9}, seeds=3, episodes_per_map=4)
    # Shuffle the rows and add another domain and algo: neither may change the matrices.
    rows = [rows[i] for i in np.random.default_rng(1).permutation(len(rows))]
    rows += make_rows({"raw": 0.5}, domain="canonical") + make_rows({"raw": 0.5}, algo="ppo")
    matrices = score_matrices(rows, "bc", "real_proxy_image")
    assert list(matrices) == ["raw", "sim2real"]
    for pipeline, matrix in matrices.items():
        assert matrix.shape == (3, len(MAPS))
        assert matrix.dtype == np.float64
        # Column j is map j in sorted order, the mean of that seed's episodes there; row i is training seed i.
        for i in range(3):
            for j, map_name in enumerate(sorted(MAPS)):
                episodes = [
                    r["score"]
                    for r in rows
                    if (r["pipeline"], r["algo"], r["domain"], r["seed"], r["map_name"])
                    == (pipeline, "bc", "real_proxy_image", i, map_name)
                ]
                assert len(episodes) == 4
                assert matrix[i, j] == pytest.approx(np.mean(episodes))


def test_a_weak_training_seed_widens_the_interval():
    """Seeds, not episodes, are the runs: one bad seed must show in the interval (episodes as tasks hid it)."""
    steady = make_rows({"a": 0.8}, seeds=3, episodes_per_map=7, spread=0.05)
    weak = [dict(r, score=r["score"] - 0.5) if r["seed"] == 2 else r for r in steady]
    narrow = interval_estimates(score_matrices(steady, "bc", "real_proxy_image"), reps=300)["a"].mean
    wide = interval_estimates(score_matrices(weak, "bc", "real_proxy_image"), reps=300)["a"].mean
    assert narrow.high - narrow.low < 0.08
    assert wide.high - wide.low > 0.2  # the bootstrap draws the weak seed 0..3 times per map


def test_score_matrices_missing_cell_names_the_pipeline():
    rows = make_rows({"raw": 0.3, "sim2real": 0.9}, episodes_per_map=3)
    rows = [r for r in rows if not (r["pipeline"] == "sim2real" and r["seed"] == 1 and r["map_name"] == "small_loop")]
    with pytest.raises(InputError, match=r"'sim2real'.*lacks 3"):
        score_matrices(rows, "bc", "real_proxy_image")


def test_score_matrices_different_tasks_name_the_pipeline():
    rows = make_rows({"raw": 0.3}, episodes_per_map=3) + make_rows({"sim2real": 0.9}, episodes_per_map=4)
    with pytest.raises(InputError, match=r"pipeline 'sim2real'.*other episodes than 'raw'"):
        score_matrices(rows, "bc", "real_proxy_image")


def test_score_matrices_nan_names_the_pipeline():
    rows = make_rows({"raw": 0.3, "sim2real": 0.9}, episodes_per_map=2)
    rows[-1] = {**rows[-1], "score": float("nan")}
    with pytest.raises(InputError, match=r"'sim2real'.*nan"):
        score_matrices(rows, "bc", "real_proxy_image")


def test_score_matrices_rejects_duplicates_and_absent_combinations():
    rows = make_rows({"raw": 0.3}, episodes_per_map=2)
    with pytest.raises(InputError, match=r"'raw'.*two scores"):
        score_matrices([*rows, rows[0]], "bc", "real_proxy_image")
    with pytest.raises(InputError, match=r"no episode rows for algo 'ppo'"):
        score_matrices(rows, "ppo", "real_proxy_image")
    with pytest.raises(InputError, match="lacks score"):
        score_matrices([{k: v for k, v in rows[0].items() if k != "score"}], "bc", "real_proxy_image")


def test_iqm_is_rlibles_trimmed_mean_and_inside_its_interval():
    # A known, skewed sequence: the IQM (25% trimmed mean) differs from the mean.
    values = (np.arange(60, dtype=np.float64) / 59.0) ** 2
    matrix = values.reshape(3, 20)
    (estimates,) = interval_estimates({"raw": matrix}, reps=REPS, seed=0).values()
    expected_iqm = scipy.stats.trim_mean(values, 0.25)
    assert estimates.iqm.point == pytest.approx(expected_iqm)
    assert estimates.mean.point == pytest.approx(values.mean())
    assert estimates.iqm.point != pytest.approx(estimates.mean.point)
    assert estimates.iqm.low <= expected_iqm <= estimates.iqm.high
    assert estimates.mean.low <= values.mean() <= estimates.mean.high
    assert estimates.iqm.low < estimates.iqm.high


def test_intervals_are_reproducible_and_leave_the_global_rng_alone():
    matrices = score_matrices(make_rows({"raw": 0.5, "sim2real": 0.6}, spread=0.2), "bc", "real_proxy_image")
    expected_draw = np.random.RandomState(123).random_sample()
    np.random.seed(123)
    first = interval_estimates(matrices, reps=REPS, seed=7)
    assert np.random.random_sample() == expected_draw  # the caller's global stream is untouched
    assert interval_estimates(matrices, reps=REPS, seed=7) == first
    # A pipeline's interval does not depend on the others present.
    assert interval_estimates({"raw": matrices["raw"]}, reps=REPS, seed=7)["raw"] == first["raw"]
    # Another seed runs (its intervals may legitimately coincide, so only their validity is checked).
    other = interval_estimates(matrices, reps=REPS, seed=8)
    for estimates in other.values():
        assert estimates.iqm.low <= estimates.iqm.point <= estimates.iqm.high
    pairs = [("sim2real", "raw")]
    assert probability_of_improvement(matrices, pairs, reps=20, seed=3) == probability_of_improvement(
        matrices, pairs, reps=20, seed=3
    )


def test_clearly_better_pipeline_is_significant():
    rows = make_rows({"raw": 0.3, "sim2real": 0.9})  # 3 seeds x 30 tasks
    comparison = compare(rows, "bc", "real_proxy_image", reps=REPS, seed=0)
    assert comparison.best == "sim2real"
    assert comparison.runner_up == "raw"
    assert comparison.best_iqm.point == pytest.approx(0.9, abs=0.02)
    assert comparison.runner_up_iqm.point == pytest.approx(0.3, abs=0.02)
    assert not comparison.intervals_overlap
    assert comparison.significant
    assert comparison.improvement.point > 0.99
    assert comparison.improvement.low > 0.5
    assert comparison.improvement_likely
    assert (comparison.best_seeds, comparison.num_episodes, comparison.num_maps) == (3, 30, 3)
    sentence = certainty_sentence(comparison)
    assert "do not overlap" in sentence
    assert "does not show a difference" not in sentence


def test_identical_distributions_overlap_and_are_a_coin_flip():
    # Same distribution: the second pipeline's draws differ only by the generator's stream.
    rows = make_rows({"raw": 0.6, "sim2real": 0.6}, spread=0.1)
    comparison = compare(rows, "bc", "real_proxy_image", reps=REPS, seed=0)
    assert comparison.intervals_overlap
    assert not comparison.significant
    # 3 seeds x 3 maps: P(improvement) is a Mann-Whitney statistic on 3 vs 3 seeds per map, coarse.
    assert comparison.improvement.point == pytest.approx(0.5, abs=0.25)
    assert comparison.improvement.low <= 0.5 <= comparison.improvement.high
    assert not comparison.improvement_likely


def test_best_per_domain_covers_every_domain_and_needs_two_pipelines():
    rows = make_rows({"raw": 0.3, "sim2real": 0.9}, episodes_per_map=2) + make_rows(
        {"raw": 0.8, "sim2real": 0.2}, episodes_per_map=2, domain="canonical"
    )
    comparisons = best_per_domain(rows, "bc", reps=20, seed=0)
    assert list(comparisons) == ["canonical", "real_proxy_image"]
    assert comparisons["canonical"].best == "raw"
    assert comparisons["real_proxy_image"].best == "sim2real"
    with pytest.raises(InputError, match="only pipeline 'raw'"):
        compare(make_rows({"raw": 0.3}, episodes_per_map=2), "bc", "real_proxy_image", reps=20)


def test_certainty_sentence_names_the_design_and_says_not_significant():
    comparison = Comparison(
        algo="bc",
        domain="real_proxy_image",
        best="sim2real",
        best_iqm=Interval(0.62, 0.50, 0.71),
        runner_up="raw",
        runner_up_iqm=Interval(0.41, 0.30, 0.55),
        improvement=Interval(0.68, 0.55, 0.80),
        best_seeds=3,
        runner_up_seeds=3,
        num_episodes=21,
        num_maps=3,
        reps=2000,
    )
    sentence = certainty_sentence(comparison)
    assert sentence.startswith("On real_proxy_image, BC sim2real drives 0.62")
    assert "0.50-0.71" in sentence and "0.30-0.55" in sentence
    assert "this run does not show a difference" in sentence
    assert "3 training seeds x 21 episodes on 3 maps" in sentence
    assert "P(sim2real > raw) = 0.68 (0.55-0.80)" in sentence
    weak = dataclasses.replace(comparison, improvement=Interval(0.6, 0.45, 0.75), runner_up_seeds=2)
    assert "3 (sim2real) and 2 (raw) training seeds" in certainty_sentence(weak)
    assert "reaches 0.5" in certainty_sentence(weak)


def _only_the_png(folder: Path, name: str) -> None:
    assert [p.name for p in folder.iterdir()] == [name]  # no temporary file left behind
    data = (folder / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_plot_performance_profiles_writes_one_png(tmp_path):
    rows = make_rows({"raw": 0.3, "sim2real": 0.9}, episodes_per_map=3, spread=0.1)
    path = tmp_path / "profiles.png"
    written = plot_performance_profiles(
        rows, "bc", "real_proxy_image", path, thresholds=np.linspace(0, 1.2, 25), reps=20
    )
    assert written == path
    _only_the_png(tmp_path, "profiles.png")


def test_plot_interval_estimates_writes_one_png(tmp_path):
    matrices = score_matrices(make_rows({"raw": 0.3, "sim2real": 0.9}, episodes_per_map=3), "bc", "real_proxy_image")
    path = tmp_path / "iqm.png"
    plot_interval_estimates(interval_estimates(matrices, reps=20), path, title="BC on real_proxy_image")
    _only_the_png(tmp_path, "iqm.png")
