"""UNIT: shared latent space wiring, translation shapes, losses, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generators.checkpoint import load_generator, save_generator
from generators.training import run_config_from_dict, train
from generators.unit.model import UNIT, UNITConfig
from generators.unit.train import UNITLosses, UNITTrainer
from tests.test_generators import domains, run_dict  # noqa: F401  (fixture)

TINY = {
    "image_size": [16, 20],
    "width": 4,
    "blocks": 2,
    "shared_blocks": 1,
    "disc_width": 8,
    "disc_layers": 2,
    "disc_scales": 2,
}


def tiny(direction: str = "sim->real") -> UNIT:
    torch.manual_seed(0)
    return UNIT(UNITConfig.from_dict(TINY), direction=direction)


def test_translate_shapes_and_direction() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    forward = tiny().translate(frames)
    assert forward.shape == frames.shape and forward.dtype == np.uint8
    assert not np.array_equal(forward, tiny("real->canonical").translate(frames))


def test_shared_layers_receive_gradients_from_both_domains() -> None:
    model = tiny()
    shared = next(model.encode_shared.parameters())
    for domain in ("sim", "real"):
        model.zero_grad()
        model.decode(model.encode(torch.rand(1, 3, 16, 20), domain), domain).mean().backward()
        assert shared.grad is not None and shared.grad.abs().sum() > 0
    private_sim = next(model.encode_sim.parameters())
    model.zero_grad()
    model.encode(torch.rand(1, 3, 16, 20), "real").mean().backward()
    assert private_sim.grad is None  # the real path does not touch the sim encoder


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="shared_blocks must be in"):
        UNITConfig(blocks=2, shared_blocks=3)
    with pytest.raises(ValueError, match="Unknown losses key 'klw'"):
        UNITLosses.from_dict({"klw": 1.0})


def test_a_few_steps_lower_the_reconstruction_loss() -> None:
    model = tiny()
    trainer = UNITTrainer(model, UNITLosses(), lr=2e-3, beta1=0.5, seed=0)
    torch.manual_seed(1)
    sim = torch.rand(4, 3, 16, 20) * 0.2 - 0.5
    real = torch.rand(4, 3, 16, 20) * 0.2 + 0.2
    losses = [trainer.train_step(sim, real)["recon"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_round_trip_and_resume(tmp_path: Path, domains: tuple[Path, Path]) -> None:  # noqa: F811
    model = tiny()
    frames = np.random.default_rng(2).integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    loaded = load_generator(save_generator(model, tmp_path / "ckpt"), method="unit")
    np.testing.assert_array_equal(model.translate(frames), loaded.translate(frames))

    def config(out: str) -> dict[str, object]:
        return {**run_dict(domains, tmp_path / out), "method": "unit", "model": TINY}

    straight = train(run_config_from_dict(config("a")), progress=False)
    run = run_config_from_dict(config("b"))
    train(run, progress=False, max_steps=3)
    resumed = train(run, resume=True, progress=False)
    for (name, x), (_, y) in zip(
        load_generator(straight).state_dict().items(), load_generator(resumed).state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
