"""STN + U-Net (real->canonical): identity start, 6-channel input, additive output, training, I/O."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from generators.checkpoint import load_generator, save_generator
from generators.stn_unet.model import STNUNet, STNUNetConfig, with_channel_std
from generators.stn_unet.train import Distortion, STNLosses, STNUNetTrainer, centre_crop
from generators.training import run_config_from_dict, train
from tests.test_generators import domains, run_dict, write_images  # noqa: F401  (fixture)

TINY = {"image_size": [16, 24], "width": 4, "depth": 2, "loc_width": 4}


def tiny() -> STNUNet:
    torch.manual_seed(0)
    return STNUNet(STNUNetConfig.from_dict(TINY))


def test_stn_starts_as_identity() -> None:
    model = tiny()
    x = torch.rand(3, 3, 16, 24) * 2 - 1
    theta = model.stn.affine(x)
    np.testing.assert_allclose(theta.detach().numpy(), np.tile([[1, 0, 0], [0, 1, 0]], (3, 1, 1)), atol=1e-6)
    assert torch.allclose(model.stn(x), x, atol=1e-5)


def test_six_channel_input_is_image_and_channel_std() -> None:
    x = torch.rand(2, 3, 8, 8)
    six = with_channel_std(x)
    assert six.shape == (2, 6, 8, 8)
    assert torch.equal(six[:, :3], x)
    expected = x.flatten(2).std(dim=2, unbiased=False)
    assert torch.allclose(six[:, 3:, 5, 2], expected) and torch.allclose(six[:, 3:, 0, 0], expected)


def test_output_is_stn_output_plus_unet_residual() -> None:
    model = tiny().eval()
    x = torch.rand(2, 3, 16, 24) * 1.0 - 0.5
    with torch.no_grad():
        aligned = model.stn(x)
        expected = (aligned + model.unet(with_channel_std(aligned))).clamp(-1, 1)
        assert torch.allclose(model(x), expected)
        torch.nn.init.zeros_(model.unet.out.weight)
        torch.nn.init.zeros_(model.unet.out.bias)
        assert torch.allclose(model(x), aligned.clamp(-1, 1))  # zero residual: the STN output itself


def test_training_undoes_a_pure_affine_distortion_better_than_at_start() -> None:
    torch.manual_seed(0)
    model = tiny()
    trainer = STNUNetTrainer(model, STNLosses(adversarial=0.0), lr=3e-3, beta1=0.5, seed=0)
    canonical = torch.zeros(8, 3, 16, 24) - 0.6
    canonical[:, :, :, 10:14] = 0.8  # a bright vertical "lane line"
    theta = torch.tensor([[1.0, 0.0, 0.15], [0.0, 1.0, 0.0]]).repeat(8, 1, 1)  # pure shift
    grid = F.affine_grid(theta, list(canonical.shape), align_corners=False)
    shifted = F.grid_sample(canonical, grid, padding_mode="border", align_corners=False)

    def error() -> float:
        with torch.no_grad():
            model.eval()
            return float(F.mse_loss(centre_crop(model(shifted), 0.9), centre_crop(canonical, 0.9)))

    trainer.distort = lambda target: shifted[: target.shape[0]]  # type: ignore[assignment,misc]
    before = error()
    for _ in range(60):
        trainer.train_step(canonical, canonical)
    assert error() < 0.5 * before


def test_distortion_changes_frames_and_stays_in_range() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 40) * 2 - 1
    out = Distortion(blur=True, noise=True)(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert (out - x).abs().mean() > 0.02


def test_round_trip_direction_and_config_errors(tmp_path: Path) -> None:
    model = tiny()
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    loaded = load_generator(save_generator(model, tmp_path / "stn"), method="stn_unet", direction="real->canonical")
    np.testing.assert_array_equal(model.translate(frames), loaded.translate(frames))
    with pytest.raises(ValueError, match="only translates 'real->canonical'"):
        STNUNet(STNUNetConfig(), direction="sim->real")
    with pytest.raises(ValueError, match="image_size must be multiples of 8"):
        STNUNetConfig(image_size=(60, 80), depth=3)
    with pytest.raises(ValueError, match="enable distortion or set paired_root"):
        STNLosses(distortion=False)
    with pytest.raises(ValueError, match="height and width must be multiples of 4"):
        model.translate(np.zeros((1, 18, 24, 3), np.uint8))


def test_runner_with_paired_renders_writes_distortion_grids(tmp_path: Path, domains: tuple[Path, Path]) -> None:  # noqa: F811
    write_images(tmp_path / "pairs" / "canonical", 6, 3, (60, 60, 60))
    write_images(tmp_path / "pairs" / "randomized", 6, 3, (80, 40, 40))
    config = {
        **run_dict(domains, tmp_path / "run"),
        "method": "stn_unet",
        "direction": "real->canonical",
        "model": TINY,
        "losses": {"paired_root": str(tmp_path / "pairs"), "paired_fraction": 0.5},
    }
    checkpoint = train(run_config_from_dict(config), progress=False)
    assert load_generator(checkpoint).direction == "real->canonical"
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert "distortion_step_0000006.png" in grids and "step_0000006.png" in grids
    (tmp_path / "pairs" / "randomized" / "frame_000.png").rename(tmp_path / "pairs" / "randomized" / "other.png")
    with pytest.raises(ValueError, match="must hold the same file names"):
        train(run_config_from_dict({**config, "out": str(tmp_path / "run2")}), progress=False)


def test_eval_canonical_command(tmp_path: Path) -> None:
    import json

    from sim2real_env.cli import main

    for name, tint in (("canonical", (60, 60, 60)), ("randomized", (90, 50, 50))):
        write_images(tmp_path / "ds" / name, 40, 5, tint, size=(16, 24))
    checkpoint = save_generator(tiny(), tmp_path / "stn")
    out = tmp_path / "metrics"
    assert (
        main(["eval-canonical", "--checkpoint", str(checkpoint), "--dataset", str(tmp_path / "ds"), "--out", str(out)])
        == 0
    )
    report = json.loads((out / "canonical_metrics.json").read_text())
    # The baseline in the same test: an identity "correction" changes nothing, so it scores exactly
    # the input and removes none of the error, on the same frames as the model.
    from generators.baselines.model import Identity, IdentityConfig

    identity = save_generator(Identity(IdentityConfig(image_size=(16, 24)), "real->canonical"), tmp_path / "id")
    dataset = ["--dataset", str(tmp_path / "ds")]
    assert main(["eval-canonical", "--checkpoint", str(identity), *dataset, "--out", str(out / "id")]) == 0
    baseline = json.loads((out / "id" / "canonical_metrics.json").read_text())["results"]
    for name in ("distorted", "randomized"):
        result, same = report["results"][name], baseline[name]
        assert result["frames"] == same["frames"] > 0
        assert result["psnr_input"] == same["psnr_input"] and result["ssim_input"] == same["ssim_input"]
        assert same["psnr_corrected"] == same["psnr_input"] and same["ssim_corrected"] == same["ssim_input"]
        assert same["error_removed_fraction"] == 0.0
    # Randomized and canonical frames differ only by their tint, (30, -10, -10) off the stripe (the
    # same noise and stripe, a sixth of the columns): MSE = 5/6 * (30^2 + 10^2 + 10^2) / 3 / 255^2.
    expected_db = 10 * math.log10(255**2 / (5 / 6 * (30**2 + 10**2 + 10**2) / 3))  # 23.28 dB
    assert report["results"]["randomized"]["psnr_input"] == pytest.approx(expected_db, abs=0.3)
    assert "| randomized |" in (out / "canonical_metrics.md").read_text()
    cyclegan = tmp_path / "cg"
    from generators.cyclegan.model import CycleGAN, CycleGANConfig

    save_generator(CycleGAN(CycleGANConfig(image_size=(16, 24), width=4, blocks=1)), cyclegan)
    assert main(["eval-canonical", "--checkpoint", str(cyclegan), "--dataset", str(tmp_path / "ds")]) == 2


def test_canonicalize_wrapper_runs_stn_unet_through_onnx_runtime() -> None:
    """The wrappers' CPU default backend: a fixed-size ONNX export (adaptive pooling), same output."""
    from generators.runtime import OnnxRuntimeGenerator
    from sim2real_env.wrappers import CanonicalizeObservation
    from tests.test_wrappers import FakeImageEnv

    torch.manual_seed(0)
    model = STNUNet(STNUNetConfig.from_dict({**TINY, "image_size": [16, 16]}))  # pooled grid 4x4 divides 4x4
    env = CanonicalizeObservation(FakeImageEnv(), model)
    assert isinstance(env.generator, OnnxRuntimeGenerator) and env.generator.fixed_size
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert np.abs(env.generator.translate(frames).astype(int) - model.translate(frames)).max() <= 1
    with pytest.raises(ValueError, match="runs at its training size"):
        env.generator.translate(np.zeros((1, 32, 32, 3), dtype=np.uint8))
