"""The transfer benchmark (agents/benchmark.py): config checks, folder reuse, statistics and report, Ray Tune trials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.benchmark import (
    analyse,
    episode_rows,
    load_benchmark_config,
    render_report,
    run_benchmark,
    trial_state,
)
from sim2real_env.errors import ConfigError, InputError

SIM2REAL = "{name: sim2real, pipeline: sim2real, checkpoint: 'pretrained:student'}"
TINY_BC = (
    "[bc.demo_episodes=1, bc.episode_actions=20, bc.dagger_rounds=0, bc.val_episodes=1, bc.epochs=1, "
    "bc.eval_episodes=0, bc.torch_threads=1, 'bc.net={width: 4, hidden: 8}']"
)


def _config_file(tmp_path: Path, pipelines: str = "[{name: raw, pipeline: raw}, {name: sim2real, pipeline: sim2real, "
                 "checkpoint: 'pretrained:student'}]") -> Path:  # fmt: skip
    path = tmp_path / "bench.yaml"
    path.write_text(
        f"name: tiny\nout: {tmp_path / 'report'}\nagents_dir: {tmp_path / 'agents'}\nseeds: [0, 1, 2]\n"
        f"pipelines: {pipelines}\ncandidate: sim2real\ncomparisons: [raw]\n"
        f"algos:\n  bc: {{config: configs/agents/bc.yaml, overrides: {TINY_BC}}}\n"
        "evaluation: {maps: [small_loop, loop_empty], domains: [canonical, real_proxy_image], episodes: 2, "
        "episode_frames: 20}\nbootstrap: 200\n"
    )
    return path


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pipelines=[{name: raw, pipeline: rawr}]", "Did you mean 'raw'"),
        ("seeds=[0, 0]", "lists a seed twice"),
        ("seeds=[]", "non-empty list"),
        ("candidate=sim2rea", "Did you mean 'sim2real'"),
        ("algos={dqn: {config: configs/agents/bc.yaml}}", "Unknown benchmark algorithm 'dqn'"),
        ("canonicalize=pretrained:stn_unet", "raw"),  # fine: there is a raw pipeline (checked below)
        ("evaluation={maps: [small_loop], domain: [canonical]}", "domain"),
        ("bootstrap=10", "bootstrap must be an integer >= 100"),
        ("out=runs/{nme}", "may use only {name}"),
    ],
)
def test_benchmark_config_errors_name_the_key(tmp_path: Path, override: str, message: str) -> None:
    if override.startswith("canonicalize"):
        config = load_benchmark_config(_config_file(tmp_path), [override])
        assert config.canonicalize == "pretrained:stn_unet"
        with pytest.raises(ConfigError, match="add a 'raw' pipeline"):
            load_benchmark_config(
                _config_file(tmp_path),
                [override, "comparisons=[sim2real]", f"pipelines=[{SIM2REAL}]"],
            )
        return
    with pytest.raises(ConfigError, match=message):
        load_benchmark_config(_config_file(tmp_path), [override])


def test_a_folder_holding_another_agent_is_refused_and_the_same_agent_reused(tmp_path: Path) -> None:
    from agents.benchmark import _agent_run

    config = load_benchmark_config(_config_file(tmp_path))
    trial = config.trials()[0]
    assert trial.name == "bc_raw_s0" and trial_state(config, trial) == "new"
    _, pipeline, algo_config = _agent_run(config, trial)
    from generators.configs import config_to_dict

    recorded = json.loads(json.dumps(config_to_dict(algo_config), default=str))
    (trial.out / "agent").mkdir(parents=True)
    (trial.out / "agent" / "agent.json").write_text(json.dumps({"pipeline": pipeline.record(), "config": recorded}))
    assert trial_state(config, trial) == "done"
    (trial.out / "agent" / "agent.json").write_text(
        json.dumps({"pipeline": pipeline.record(), "config": {**recorded, "epochs": 9}})
    )
    with pytest.raises(InputError, match=r"bc_raw_s0 holds a bc agent trained with other settings \(epochs: 9 vs 1\)"):
        trial_state(config, trial)
    other = dict(pipeline.record(), name="randomized")
    (trial.out / "agent" / "agent.json").write_text(json.dumps({"pipeline": other, "config": recorded}))
    with pytest.raises(InputError, match="name: 'raw' vs 'randomized'"):
        trial_state(config, trial)


def _fake_matrix(config: Any, lead: float) -> dict[str, Any]:
    """Evaluation results as the harness writes them: sim2real drives ``lead`` x raw's on real_proxy_image."""
    rng = np.random.default_rng(0)
    episodes: dict[str, dict[str, list[dict[str, Any]]]] = {"expert": {}}
    seeds = [1_000_000, 1_000_001]
    for domain in config.evaluation.domains:
        episodes["expert"][domain] = [
            {"seed": s, "map_name": m, "distance_in_lane_m": 1.5} for m in config.evaluation.maps for s in seeds
        ]
    for trial in config.trials():
        episodes[trial.name] = {}
        for domain in config.evaluation.domains:
            scale = lead if (trial.spec.name == "sim2real" and domain == "real_proxy_image") else 1.0
            episodes[trial.name][domain] = [
                {"seed": s, "map_name": m, "distance_in_lane_m": float(0.6 * scale + rng.normal(0, 0.03))}
                for m in config.evaluation.maps
                for s in seeds
            ]
    return {"episodes": episodes}


def test_statistics_and_report_say_which_pipeline_wins_and_how_surely(tmp_path: Path) -> None:
    config = load_benchmark_config(_config_file(tmp_path))
    rows = episode_rows(config, _fake_matrix(config, lead=1.5))
    assert len(rows) == 2 * 3 * 2 * 2 * 2  # pipelines x seeds x domains x maps x episodes
    assert {round(r["score"] * 1.5 / r["distance_in_lane_m"], 6) for r in rows} == {1.0}  # share of the expert's
    analysis = analyse(config, rows)
    image, canonical = analysis["best"]["bc"]["real_proxy_image"], analysis["best"]["bc"]["canonical"]
    assert image["best"] == "sim2real" and image["significant"] and image["improvement"]["low"] > 0.9
    assert image["best_iqm"]["point"] == pytest.approx(0.6, abs=0.05)  # 0.9 m of the expert's 1.5 m
    assert not canonical["significant"]
    sentence = analysis["sentences"]["bc"]["real_proxy_image: sim2real vs raw"]
    assert "do not overlap, so the difference is significant" in sentence
    assert "3 training seeds x 4 episodes on 2 maps" in sentence
    results = {
        "analysis": analysis,
        "training": [],
        "provenance": {"command": "sim2real transfer-benchmark", "git_sha": "abc"},
        "wall_s": {"train": 60.0, "evaluate": 120.0},
        "config_path": "bench.yaml",
    }
    report = render_report(config, results)
    verdict = report[report.index("## Verdict") : report.index("## How certain")]
    assert "| bc | real_proxy_image | **sim2real** |" in verdict and "| yes |" in verdict
    assert "| bc | canonical |" in verdict and "| no |" in verdict
    assert report.index("## Verdict") < report.index("## BC: IQM")
    missing = _fake_matrix(config, 1.0)
    del missing["episodes"]["bc_sim2real_s2"]
    with pytest.raises(InputError, match="lack agent 'bc_sim2real_s2'"):
        episode_rows(config, missing)


@pytest.mark.sim
@pytest.mark.slow
def test_training_trials_on_ray_tune_equal_the_serial_agents(tmp_path: Path) -> None:
    """Two BC trials as Ray Tune trials on 2 workers give the serial run's weights, bit for bit; a rerun reuses them."""
    from agents.cluster import RayOptions

    serial_dir, tune_dir = tmp_path / "serial", tmp_path / "tune"
    serial_dir.mkdir(), tune_dir.mkdir()
    overrides = ["seeds=[0, 1]", "pipelines=[{name: raw, pipeline: raw}]", "candidate=raw", "comparisons=[raw]"]
    serial = load_benchmark_config(_config_file(serial_dir), overrides)
    fanned = load_benchmark_config(_config_file(tune_dir), overrides)
    from agents.benchmark import train_all

    serial_rows = train_all(serial, RayOptions(), progress=False)
    tune_rows = train_all(fanned, RayOptions(workers=2), progress=False)
    assert [r["status"] for r in serial_rows] == [r["status"] for r in tune_rows] == ["trained", "trained"]
    for trial in ("bc_raw_s0", "bc_raw_s1"):
        a = (serial_dir / "agents" / trial / "checkpoints" / "000000001" / "policy.safetensors").read_bytes()
        b = (tune_dir / "agents" / trial / "checkpoints" / "000000001" / "policy.safetensors").read_bytes()
        assert a == b, trial
    assert (tune_dir / "report" / "tune").is_dir()  # Ray Tune's own experiment folder
    assert [r["status"] for r in train_all(fanned, RayOptions(), progress=False)] == ["reused", "reused"]
    with pytest.raises(InputError, match="run the evaluate stage"):
        run_benchmark(fanned, stages=("report",), progress=False)


def _fake_agent(trial: Any, pipeline: Any, config: dict[str, Any], summary: dict[str, Any] | None = None) -> None:
    """A trial folder of the older layout: ``agent/`` (and PPO's ``best_agent/``)."""
    for folder in {trial.out / "agent", trial.out / ("best_agent" if trial.algo == "ppo" else "agent")}:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "agent.json").write_text(
            json.dumps({"pipeline": pipeline.record(), "config": config, "summary": summary or {}})
        )


def test_a_stopped_ppo_run_is_resumed_and_other_env_settings_are_refused(tmp_path: Path) -> None:
    from agents.benchmark import _agent_run
    from generators.configs import config_to_dict

    config = load_benchmark_config(
        _config_file(tmp_path), ["algos={ppo: {config: configs/agents/ppo.yaml, overrides: [ppo.total_steps=100]}}"]
    )
    trial = config.trials()[0]
    _, pipeline, algo_config = _agent_run(config, trial)
    recorded = json.loads(json.dumps(config_to_dict(algo_config), default=str))
    _fake_agent(trial, pipeline, recorded, {"interrupted": True, "env_steps": 40})
    assert trial_state(config, trial) == "resume"  # a Ctrl-C'd run saved an agent: not the stated budget
    _fake_agent(trial, pipeline, recorded, {"interrupted": False, "env_steps": 100})
    assert trial_state(config, trial) == "done"
    other = pipeline.record()
    other["env"] = {**other["env"], "reward": "survival"}
    (trial.out / "agent" / "agent.json").write_text(json.dumps({"pipeline": other, "config": recorded}))
    with pytest.raises(InputError, match="env.reward: 'survival' vs 'lane_progress'"):
        trial_state(config, trial)


def test_trial_folders_of_both_layouts_are_reused_resumed_and_fingerprinted_alike(tmp_path: Path) -> None:
    """A PPO trial in ``checkpoints/`` (new) or ``agent/`` + ``best_agent/`` (older) is read the same way.

    A periodic checkpoint's agent ("final": false) is resumed; the run's final agent is done; the
    evaluated agent is the best one; its fingerprint covers the agent's files only (not the step
    folder's ppo.zip / progress.json), so an older trial folder keeps the fingerprint recorded for it.
    """
    import shutil

    from agents.benchmark import _agent_run, agent_fingerprints, train_trial
    from generators.configs import config_to_dict
    from sim2real_env.checkpoints import save_step

    config = load_benchmark_config(
        _config_file(tmp_path), ["algos={ppo: {config: configs/agents/ppo.yaml, overrides: [ppo.total_steps=100]}}"]
    )
    trial = config.trials()[0]
    _, pipeline, algo_config = _agent_run(config, trial)
    recorded = json.loads(json.dumps(config_to_dict(algo_config), default=str))
    older = {k: v for k, v in recorded.items() if k != "keep_last"}  # agents saved before keep_last existed

    def agent(summary: dict[str, Any], config: dict[str, Any] = recorded) -> Any:
        def write(folder: Path) -> None:
            (folder / "agent.json").write_text(
                json.dumps({"pipeline": pipeline.record(), "config": config, "summary": summary})
            )
            (folder / "policy.safetensors").write_bytes(b"weights")

        return write

    save_step(trial.out, 64, agent({"env_steps": 64, "final": False}), keep_last=3)
    (trial.out / "checkpoints" / "000000064" / "ppo.zip").write_bytes(b"resume state")
    assert trial_state(config, trial) == "resume"
    save_step(trial.out, 100, agent({"env_steps": 100, "final": True, "best": {"env_steps": 64}}), keep_last=3)
    (trial.out / "checkpoints" / "000000100" / "ppo.zip").write_bytes(b"resume state")
    with pytest.raises(InputError, match="has an agent but no best"):
        trial_state(config, trial)  # a finished PPO run always has its best
    best = trial.out / "checkpoints" / "best"
    shutil.copytree(trial.out / "checkpoints" / "000000064", best)
    assert trial_state(config, trial) == "done"
    assert train_trial(config, trial)["status"] == "reused"
    assert trial.agent_path == best
    new_print = agent_fingerprints(config)[trial.name]
    (best / "ppo.zip").write_bytes(b"not part of the agent")
    assert agent_fingerprints(config)[trial.name] == new_print

    # The older layout, with the same agent files and a config without keep_last: reused, same print.
    shutil.rmtree(trial.out)
    for name in ("agent", "best_agent"):
        (trial.out / name).mkdir(parents=True)
        agent({"env_steps": 100}, older)(trial.out / name)
    assert trial_state(config, trial) == "done" and trial.agent_path == trial.out / "best_agent"
    agent({"env_steps": 64, "final": False})(trial.out / "best_agent")  # the files of the new layout's best
    assert agent_fingerprints(config)[trial.name] == new_print


def test_a_report_refuses_agents_other_than_the_evaluated_ones(tmp_path: Path) -> None:
    from agents.benchmark import _agent_run, agent_fingerprints
    from generators.configs import config_to_dict

    config = load_benchmark_config(_config_file(tmp_path))
    for trial in config.trials():
        _, pipeline, algo_config = _agent_run(config, trial)
        _fake_agent(trial, pipeline, json.loads(json.dumps(config_to_dict(algo_config), default=str)))
    matrix = tmp_path / "report" / "matrix"
    matrix.mkdir(parents=True)
    (matrix / "results.json").write_text(json.dumps(_fake_matrix(config, 1.0)))
    (matrix / "agents.json").write_text(json.dumps(agent_fingerprints(config)))
    (config.trials()[1].agent_path / "policy.safetensors").write_bytes(b"retrained")
    with pytest.raises(InputError, match=r"1 agent\(s\) differ from the ones .* scored \(first: bc_sim2real_s0\)"):
        run_benchmark(config, stages=("report",), progress=False)
