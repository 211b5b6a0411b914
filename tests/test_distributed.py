"""Data-parallel generator training (``torch.distributed``, gloo on CPU).

Two ranks are started with ``torch.multiprocessing.spawn`` and a file rendezvous (no ports), plus
one ``torchrun`` run of the CLI. Kept tiny: 16x20 models, 2 frames per rank, a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from generators.checkpoint import load_generator, read_config, resolve_checkpoint
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from generators.training import run_config_from_dict, train
from tests.test_generators import TINY, run_dict, write_images

WORLD = 2


@pytest.fixture()
def domains(tmp_path: Path) -> tuple[Path, Path]:
    write_images(tmp_path / "sim", 24, 1, (60, 60, 60))
    write_images(tmp_path / "real", 24, 2, (30, 90, 140))
    return tmp_path / "sim", tmp_path / "real"


def _worker(rank: int, init_file: str, jobs: list[dict[str, Any]]) -> None:
    """One rank: join the group, run each job's ``train`` calls in order, leave."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        for job in jobs:
            run = run_config_from_dict(job["run"])
            for resume, max_steps in job["calls"]:
                train(run, resume=resume, progress=False, max_steps=max_steps)
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path, jobs: list[dict[str, Any]]) -> None:
    torch.multiprocessing.spawn(_worker, args=(str(tmp_path / "rendezvous"), jobs), nprocs=WORLD, join=True)


def _run(domains: tuple[Path, Path], out: Path, batch_size: int, steps: int = 6, **extra: Any) -> dict[str, Any]:
    config = run_dict(domains, out, steps=steps)
    config["training"].update(
        {"batch_size": batch_size, "checkpoint_every": 100, "sample_every": 100, "torch_threads": 1}
    )
    return {**config, **extra}


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(checkpoint) / "weights.safetensors"))


def _logged_losses(out: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag.startswith("loss/")}


def test_two_ranks_match_one_process_with_the_global_batch_and_resume_exactly(
    tmp_path: Path, domains: tuple[Path, Path]
) -> None:
    """CycleGAN (image pools included) on 2 ranks x 2 frames = 1 process x 4 frames, within float noise.

    Both runs train on the same frames with the same crops; what differs is floating-point order:
    the gradient of a mean over 4 frames is computed as the mean of two means over 2 frames and
    summed by the all-reduce (about 1e-7 relative). Tolerances, and why:

    * logged losses (each the mean over the global batch) agree to 2e-3 relative (seen: 5e-6 on one
      machine; on another CPU the same code drifted to 9e-4 by the 6th step, the float noise
      compounding through the GAN's steps);
    * the translators' outputs on fixed frames agree to within one uint8 level, 2/255 in [-1, 1]
      units (seen: 3e-4 after 6 steps on one machine, 5.4e-3 on another CPU, with the weights
      within the bound below on both: the few weights Adam walks apart, below, move outputs too);
    * every weight agrees to 1e-3 = 5 x the learning rate (seen: 7e-4). Not tighter because Adam
      divides a gradient by its own scale: where the gradient is analytically zero (an instance
      norm's bias whose constant the next convolution and instance norm remove), float noise of
      either sign becomes a full +-lr step, so such weights take different walks that the output
      does not see.

    Resuming a 2-rank run is exact (bit for bit), as it is for one process.
    """
    single = train(run_config_from_dict(_run(domains, tmp_path / "single", batch_size=4)), progress=False)
    jobs: list[dict[str, Any]] = [
        {"run": _run(domains, tmp_path / "ddp", batch_size=2), "calls": [(False, None)]},
        {"run": _run(domains, tmp_path / "resumed", batch_size=2), "calls": [(False, 3), (True, None)]},
    ]
    _spawn(tmp_path, jobs)
    ddp = resolve_checkpoint(tmp_path / "ddp")  # its checkpoints/last
    a, b = _weights(single), _weights(ddp)
    torch.manual_seed(0)  # what train() does before building the model: its initial weights
    initial = CycleGAN(CycleGANConfig.from_dict(TINY)).state_dict()
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], initial[k]) for k in a)  # training moved the weights
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-3), (key, float((a[key] - b[key]).abs().max()))
    one, two = load_generator(single), load_generator(ddp)
    frames = torch.rand(4, 3, 16, 20, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        for network in ("sim_to_real", "real_to_sim"):
            out_one, out_two = getattr(one, network)(frames), getattr(two, network)(frames)
            assert float((out_one - out_two).abs().max()) < 2 / 255, network
    single_losses, ddp_losses = _logged_losses(tmp_path / "single"), _logged_losses(tmp_path / "ddp")
    assert single_losses.keys() == ddp_losses.keys() and len(single_losses["loss/g_total"]) == 6
    for tag, values in single_losses.items():
        np.testing.assert_allclose(ddp_losses[tag], values, rtol=2e-3, atol=1e-6, err_msg=tag)

    resumed = _weights(tmp_path / "resumed")
    for key, value in b.items():
        assert torch.equal(value, resumed[key]), key
    config = json.loads((ddp / "config.json").read_text())
    assert config["step"] == 6 and config["training"]["world_size"] == WORLD
    record = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert record["distributed"] == {"world_size": WORLD, "global_batch_size": 4}
    assert "world_size" not in json.loads((single / "config.json").read_text())["training"]


def _method_run(domains: tuple[Path, Path], out: Path, method: str, model: dict, losses: dict | None = None, **kw: Any):
    return {
        "method": method,
        "direction": kw.pop("direction", "sim->real"),
        "out": str(out),
        "model": model,
        "losses": losses or {},
        "training": {
            "steps": kw.pop("steps", 2),
            "batch_size": kw.pop("batch_size", 2),
            "decay_start": 0,
            "sample_every": 100,
            "checkpoint_every": 100,
            "sample_count": 2,
            "log_every": 1,
            "load_scale": 1.0,
            "torch_threads": 1,
        },
        "data": {"sim": {"root": str(domains[0])}, "real": {"root": str(domains[1])}},
    }


def test_every_method_trains_on_two_ranks_in_step(tmp_path: Path) -> None:
    """Each method runs 2 steps on 2 ranks; ``train`` raises if the ranks' weights or buffers drift apart.

    ``color_transfer`` (no gradients) fits on the whole global batch on every rank, so its statistics
    equal one process's with that batch exactly.
    """
    domains = tmp_path / "sim", tmp_path / "real"
    write_images(domains[0], 24, 1, (60, 60, 60), size=(32, 40))
    write_images(domains[1], 24, 2, (30, 90, 140), size=(32, 40))
    write_images(tmp_path / "pairs" / "canonical", 6, 3, (60, 60, 60), size=(32, 40))
    write_images(tmp_path / "pairs" / "randomized", 6, 3, (80, 40, 40), size=(32, 40))
    color = {"image_size": [32, 40], "blur": 0}
    single_ct = train(
        run_config_from_dict(_method_run(domains, tmp_path / "ct_single", "color_transfer", color, batch_size=4)),
        progress=False,
    )
    unit = {"image_size": [16, 20], "width": 4, "blocks": 2, "shared_blocks": 1, "disc_width": 8, "disc_layers": 2}
    runs = {
        "ct": _method_run(domains, tmp_path / "ct", "color_transfer", color),
        "identity": _method_run(domains, tmp_path / "identity", "identity", {"image_size": [32, 40]}),
        "unit": _method_run(domains, tmp_path / "unit", "unit", {**unit, "disc_scales": 2}),
        "stn_unet": _method_run(
            domains,
            tmp_path / "stn_unet",
            "stn_unet",
            {"image_size": [16, 24], "width": 4, "depth": 2, "loc_width": 4},
            {"paired_root": str(tmp_path / "pairs"), "paired_fraction": 0.5},
            direction="real->canonical",
        ),
        "cut": _method_run(
            domains,
            tmp_path / "cut",
            "cut",
            {"image_size": [32, 40], "width": 4, "blocks": 2, "prior_checkpoint": str(single_ct)},
            {"mode": "fastcut", "discriminator": "projected", "num_patches": 16, "mlp_width": 16},
        ),
        "nst": _method_run(domains, tmp_path / "nst", "nst", {"image_size": [32, 40], "width": 4, "blocks": 1}),
        "student": _method_run(
            domains,
            tmp_path / "student",
            "student",
            {"image_size": [32, 40], "factor": 4, "context_width": 8, "context_layers": 2, "detail_width": 4,
             "color_width": 8},
            {"teacher": str(single_ct), "lambda_feature": 0.1},
        ),
    }  # fmt: skip
    _spawn(tmp_path, [{"run": run, "calls": [(False, None)]} for run in runs.values()])
    for name, run in runs.items():
        config = read_config(Path(run["out"]))
        assert config["step"] == 2 and config["training"]["world_size"] == WORLD, name
    one, two = _weights(single_ct), _weights(tmp_path / "ct")
    for key, value in one.items():
        assert torch.equal(value, two[key]), key


def _collectives_worker(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from generators.augment import diff_augment
    from generators.distributed import DistContext, check_in_sync, gather_batch

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        frames = torch.linspace(-1, 1, 8 * 3 * 8 * 12).view(8, 3, 8, 12)
        mine = frames[rank * 4 : (rank + 1) * 4]
        augmented = gather_batch(diff_augment(mine, torch.Generator().manual_seed(0)))
        torch.save(augmented, Path(out, f"augmented{rank}.pt"))
        torch.manual_seed(0)
        layer = torch.nn.Linear(3, 2)
        check_in_sync([layer], DistContext(rank, WORLD), torch.device("cpu"))  # equal: passes
        if rank == 1:
            with torch.no_grad():
                layer.bias[0] += 1e-6
        try:
            check_in_sync([layer], DistContext(rank, WORLD), torch.device("cpu"))
        except RuntimeError as exc:
            Path(out, f"rank{rank}.txt").write_text(str(exc))
    finally:
        dist.destroy_process_group()


def test_diff_augment_draws_for_the_global_batch_and_drifting_ranks_are_an_error(tmp_path: Path) -> None:
    """Each rank's DiffAugment of its 4 rows, gathered, is one process's augmentation of all 8 rows."""
    from generators.augment import diff_augment

    torch.multiprocessing.spawn(_collectives_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD)
    frames = torch.linspace(-1, 1, 8 * 3 * 8 * 12).view(8, 3, 8, 12)
    expected = diff_augment(frames, torch.Generator().manual_seed(0))
    for rank in range(WORLD):
        assert torch.equal(torch.load(tmp_path / f"augmented{rank}.pt"), expected)
        assert "weights differ (1 of 2 tensors)" in (tmp_path / f"rank{rank}.txt").read_text()


def test_torchrun_cli_then_resume_on_one_process(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    """``torchrun -m sim2real_env.cli train-generator`` on 2 ranks; ``--resume`` of its checkpoint on 1 rank."""
    import yaml

    from sim2real_env.cli import main

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_run(domains, tmp_path / "out", batch_size=2, steps=4)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    command += ["-m", "sim2real_env.cli", "train-generator", "--config", str(path), "--max-steps", "2", "--quiet"]
    done = subprocess.run(command, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    config = read_config(tmp_path / "out")  # its checkpoints/last
    assert config["step"] == 2 and config["training"]["world_size"] == WORLD
    assert sorted(p.name for p in (tmp_path / "out" / "tensorboard").iterdir())  # rank 0 wrote its log
    assert main(["train-generator", "--config", str(path), "--resume", "--quiet"]) == 0
    config = read_config(tmp_path / "out")
    assert config["step"] == 4 and "world_size" not in config["training"]
    assert "distributed" not in json.loads((tmp_path / "out" / "run.json").read_text())


def test_ranks_come_from_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from generators.distributed import DistContext, detect, local_part, step_seed, threads_per_rank

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert detect() == DistContext()  # a plain run
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not detect().enabled  # torchrun --nproc_per_node 1 is the single-process run
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match="RANK is not set"):
        detect()
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match="inconsistent RANK=5, WORLD_SIZE=4"):
        detect()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    context = detect()
    assert (context.rank, context.world_size, context.local_rank, context.is_main) == (3, 4, 1, False)
    batch = torch.arange(8)
    assert local_part(batch, context).tolist() == [6, 7]
    with pytest.raises(ValueError, match="does not split over 4 ranks"):
        local_part(torch.arange(6), context)
    assert step_seed(0, 5, 0) != step_seed(0, 5, 1) != step_seed(0, 6, 1)
    assert 1 <= threads_per_rank(context, 8) <= max(1, (os.cpu_count() or 1) // 2)
    assert threads_per_rank(DistContext(), 8) == 8
