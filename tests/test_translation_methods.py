"""Baselines (identity, colour transfer), CUT/FastCUT, the projected discriminator, the segmenter, KID logging."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from generators.augment import diff_augment
from generators.baselines.model import ColorTransfer, ColorTransferConfig, Identity, IdentityConfig
from generators.checkpoint import load_generator, read_config, save_generator
from generators.color import lab_to_rgb, lab_transfer, rgb_to_lab
from generators.cut.model import CUT, CUTConfig
from generators.cut.train import CUTLosses, CUTTrainer, patch_nce
from generators.realism import kernel_distance
from generators.training import run_config_from_dict, train
from sim2real_env.errors import InputError
from sim2real_env.harvest_folder import harvest_frame_names, read_harvest
from sim2real_env.segmentation import SegClass
from tests.test_generators import write_images


@pytest.fixture()
def domains(tmp_path: Path) -> tuple[Path, Path]:
    write_images(tmp_path / "sim", 40, 1, (60, 60, 60), size=(32, 40))
    write_images(tmp_path / "real", 40, 2, (30, 90, 140), size=(32, 40))
    return tmp_path / "sim", tmp_path / "real"


def _run(domains: tuple[Path, Path], out: Path, method: str, model: dict, losses: dict | None = None, **training: Any):
    return run_config_from_dict(
        {
            "method": method,
            "out": str(out),
            "model": model,
            "losses": losses or {},
            "training": {
                "steps": 6,
                "batch_size": 2,
                "decay_start": 3,
                "sample_every": 3,
                "checkpoint_every": 2,
                "sample_count": 2,
                "log_every": 1,
                "load_scale": 1.0,
                **training,
            },
            "data": {"sim": {"root": str(domains[0])}, "real": {"root": str(domains[1])}},
        }
    )


def assert_resumes_exactly(domains: tuple[Path, Path], tmp_path: Path, method: str, model: dict, losses: dict) -> Any:
    """Train 6 steps straight and 3 + 3 with ``--resume``: the weights must be equal; returns the straight run's."""
    straight = train(_run(domains, tmp_path / "straight", method, model, losses), progress=False)
    run = _run(domains, tmp_path / "resumed", method, model, losses)
    train(run, progress=False, max_steps=3)
    resumed = train(run, resume=True, progress=False)
    a, b = load_generator(straight), load_generator(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    return a


def fitted_color_transfer(domains: tuple[Path, Path], out: Path) -> Path:
    run = _run(domains, out, "color_transfer", {"image_size": [32, 40], "blur": 0}, steps=20, decay_start=0)
    return train(run, progress=False)


# -- colour -------------------------------------------------------------------------------------------


def test_lab_round_trip_and_known_values() -> None:
    rgb = torch.rand(2, 3, 8, 8)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)).numpy(), rgb.numpy(), atol=2e-4)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    np.testing.assert_allclose(white.numpy(), [100.0, 0.0, 0.0], atol=0.05)
    # OpenCV's float Lab agrees (sRGB D65).
    pixel = np.array([[[0.8, 0.3, 0.1]]], np.float32)
    expected = cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab).flatten()
    ours = rgb_to_lab(torch.from_numpy(pixel).permute(2, 0, 1)[None]).flatten().numpy()
    np.testing.assert_allclose(ours, expected, atol=0.3)


# -- baselines ----------------------------------------------------------------------------------------


def test_identity_returns_its_input_and_round_trips(tmp_path: Path) -> None:
    model = Identity(IdentityConfig(image_size=(16, 20)))
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(model.translate(frames), frames)
    loaded = load_generator(save_generator(model, tmp_path / "identity"))
    np.testing.assert_array_equal(loaded.translate(frames), frames)


def test_color_transfer_fit_matches_the_real_statistics(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    checkpoint = fitted_color_transfer(domains, tmp_path / "ct")
    model = load_generator(checkpoint, method="color_transfer")
    sim = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(domains[0].glob("*.png"))])
    real = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(domains[1].glob("*.png"))])

    def lab_moments(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lab = rgb_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0)
        return lab.mean(dim=(0, 2, 3)).numpy(), lab.std(dim=(0, 2, 3)).numpy()

    (sim_mean, _), (real_mean, real_std) = lab_moments(sim), lab_moments(real)
    out_mean, out_std = lab_moments(model.translate(sim))
    assert np.abs(sim_mean - real_mean).max() > 10  # the domains differ...
    np.testing.assert_allclose(out_mean, real_mean, atol=3.5)  # ...and the transfer closes it (up to gamut clipping)
    np.testing.assert_allclose(out_std, real_std, rtol=0.25, atol=1.0)
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["method"] == "color_transfer" and config["step"] == 20


def test_color_transfer_runs_in_onnx_runtime_like_torch(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    from generators.runtime import OnnxRuntimeGenerator

    model = load_generator(fitted_color_transfer(domains, tmp_path / "ct"))
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    fast = OnnxRuntimeGenerator(model, threads=1).translate(frames)
    assert np.abs(fast.astype(int) - model.translate(frames).astype(int)).max() <= 1


def test_color_transfer_config_errors() -> None:
    with pytest.raises(ValueError, match="blur must be one of"):
        ColorTransferConfig(blur=4)
    with pytest.raises(ValueError, match="blur_sigma must be in"):
        ColorTransferConfig(blur_sigma=0.0)
    with pytest.raises(ValueError, match="sim->real only"):
        ColorTransfer(ColorTransferConfig(), direction="real->canonical")


# -- CUT ----------------------------------------------------------------------------------------------


def test_patch_nce_prefers_matching_patches() -> None:
    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(2, 64, 32), dim=-1)
    matched = patch_nce(keys.clone(), keys, 0.07)
    shuffled = patch_nce(keys[:, torch.randperm(64)], keys, 0.07)
    assert matched < 0.1 < np.log(64) * 0.5 < shuffled


def test_cut_prior_starts_at_the_color_transfer(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    ct_path = fitted_color_transfer(domains, tmp_path / "ct")
    ct = load_generator(ct_path)
    model = CUT(
        CUTConfig(image_size=(32, 40), width=4, blocks=2, nce_layers=(0, 3, 7, 11, 13), prior_checkpoint=str(ct_path))
    )
    CUTTrainer(model, CUTLosses(mode="fastcut", num_patches=16, mlp_width=16, disc_width=8), 2e-4, 0.5, 0)
    frames = np.random.default_rng(1).integers(0, 256, (2, 32, 40, 3), dtype=np.uint8)
    # Zero-initialised residual: the untrained CUT is the colour transfer (within a uint8 level).
    assert np.abs(model.translate(frames).astype(int) - ct.translate(frames).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="nce_layers must be increasing"):
        CUTConfig(blocks=1, nce_layers=(0, 3, 7, 11, 13))
    with pytest.raises(ValueError, match="losses.mode must be one of"):
        CUTLosses(mode="fast")


def test_shipped_color_transfer_and_fastcut_prior_share_one_transfer() -> None:
    """One Lab transfer behind the baselines and FastCUT's prior: the shipped checkpoints agree."""
    ct, fastcut = load_generator("pretrained:color_transfer"), load_generator("pretrained:fastcut")
    banded = load_generator(fastcut.config.prior_checkpoint)  # the fit its prior was copied from
    assert fastcut.config.prior_checkpoint == "pretrained:color_transfer_8_bands"
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    frames[:, 60:] = (rng.integers(0, 60, (2, 60, 160, 3)) + 60).astype(np.uint8)  # a grey "road" half
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        assert torch.equal(fastcut.prior(x), banded.transfer(x))  # the CUT prior was fitted from this baseline
        for baseline in (ct, banded):
            assert torch.equal(baseline.transfer(x), lab_transfer(x, baseline.gain, baseline.offset))
        assert not torch.equal(banded.transfer(x), ct.transfer(x))  # 8 bands are not the global fit
    # Per-channel means of the global baseline's translation, measured before its copies became one.
    got = ct.translate(frames).reshape(-1, 3).mean(axis=0)
    assert np.allclose(got, (74.460, 47.845, 47.707), atol=0.05), got


@pytest.mark.parametrize(("mode", "disc"), [("cut", "patch"), ("fastcut", "projected")])
def test_cut_modes_train_and_resume_exactly(tmp_path: Path, domains: tuple[Path, Path], mode: str, disc: str) -> None:
    ct_path = fitted_color_transfer(domains, tmp_path / "ct")
    model = {"image_size": [32, 40], "width": 4, "blocks": 2, "prior_checkpoint": str(ct_path)}
    losses = {"mode": mode, "discriminator": disc, "num_patches": 16, "mlp_width": 16, "disc_width": 8}
    a = assert_resumes_exactly(domains, tmp_path, "cut", model, losses)
    # The residual moved away from zero: training did something.
    assert float(a.net.net[-2].weight.detach().abs().sum()) > 0
    expected = CUTLosses(mode=mode)
    assert (expected.lambda_nce, expected.nce_idt, expected.flip_equivariance) == (
        (1.0, True, False) if mode == "cut" else (10.0, False, True)
    )


def test_projected_discriminator_is_frozen_except_its_heads() -> None:
    from generators.projected import ProjectedDiscriminator

    disc = ProjectedDiscriminator()
    trainable = {id(p) for p in disc.trainable_parameters()}
    assert all(p.requires_grad == (id(p) in trainable) for p in disc.parameters())
    x = torch.zeros(2, 3, 64, 80, requires_grad=True)
    logits = disc(x)
    assert [tuple(lg.shape[2:]) for lg in logits] == [(8, 10), (4, 5), (2, 2), (2, 3)]
    sum(lg.sum() for lg in logits).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # gradients reach the generator
    disc.train()
    assert not disc.backbone.training  # frozen batch norms stay in eval mode


def test_cyclegan_projected_option_trains() -> None:
    from generators.cyclegan.model import CycleGAN, CycleGANConfig
    from generators.cyclegan.train import CycleGANLosses, CycleGANTrainer

    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(image_size=(32, 40), width=4, blocks=1))
    trainer = CycleGANTrainer(model, CycleGANLosses(discriminator="projected"), 2e-4, 0.5, 0)
    before = [p.detach().clone() for p in trainer.disc_real.heads.parameters()]
    backbone = [p.detach().clone() for p in trainer.disc_real.backbone.parameters()]
    sim, real = torch.rand(2, 3, 32, 40) * 2 - 1, torch.rand(2, 3, 32, 40) * 2 - 1
    losses = trainer.train_step(sim, real)
    assert np.isfinite(list(losses.values())).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.disc_real.heads.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(backbone, trainer.disc_real.backbone.parameters(), strict=True))


def test_diff_augment_is_reproducible_and_keeps_shape() -> None:
    x = torch.rand(3, 3, 24, 32) * 2 - 1
    a = diff_augment(x, torch.Generator().manual_seed(5))
    b = diff_augment(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)


# -- KID and the training-time realism log -----------------------------------------------------------


def test_kernel_distance_separates_and_reports_spread() -> None:
    rng = np.random.default_rng(0)
    a, b, far = rng.normal(size=(150, 8)), rng.normal(size=(150, 8)), rng.normal(size=(150, 8)) + 2
    near_mean, near_std = kernel_distance(a, b, subsets=50)
    far_mean, _ = kernel_distance(a, far, subsets=50)
    assert abs(near_mean) < 3 * near_std + 0.05 < far_mean


def test_kid_log_writes_curve_and_keeps_best(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    ct_path = fitted_color_transfer(domains, tmp_path / "ct")
    model = {"image_size": [32, 40], "width": 4, "blocks": 2, "prior_checkpoint": str(ct_path)}
    losses = {"mode": "fastcut", "num_patches": 16, "mlp_width": 16, "disc_width": 8}
    run = _run(domains, tmp_path / "cut", "cut", model, losses, kid_every=3, kid_frames=8)
    train(run, progress=False)
    rows = (tmp_path / "cut" / "kid.csv").read_text().splitlines()
    assert rows[0] == "step,wall_s,kid_lite0,kid_lite2" and [r.split(",")[0] for r in rows[1:]] == ["0", "3", "6"]
    assert (tmp_path / "cut" / "kid_curve.png").stat().st_size > 0
    best = json.loads((tmp_path / "cut" / "checkpoints" / "best" / "config.json").read_text())
    kids = {int(r.split(",")[0]): float(r.split(",")[3]) for r in rows[1:]}
    assert best["step"] == min(kids, key=lambda s: kids[s])


# -- segmenter ----------------------------------------------------------------------------------------


def _fake_harvest(root: Path, count: int = 12) -> None:
    """Frames with a white and a yellow stripe on grey road, their class maps, both views."""
    rng = np.random.default_rng(0)
    rows = ["frame"]
    for view in ("canonical", "randomized", "segmentation"):
        (root / view).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        frame = np.full((32, 40, 3), 70, np.uint8)
        seg = np.full((32, 40), SegClass.ROAD, np.uint8)
        x = int(rng.integers(2, 14))
        frame[:, x : x + 4] = (240, 240, 240)
        seg[:, x : x + 4] = SegClass.WHITE_LINE
        frame[:, x + 20 : x + 23] = (230, 200, 30)
        seg[:, x + 20 : x + 23] = SegClass.YELLOW_LINE
        name = f"f{i:03d}"
        rows.append(name)
        cv2.imwrite(str(root / "canonical" / f"{name}.png"), frame[..., ::-1])
        cv2.imwrite(str(root / "randomized" / f"{name}.png"), (frame * 0.7).astype(np.uint8)[..., ::-1])
        cv2.imwrite(str(root / "segmentation" / f"{name}.png"), seg)
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")


def test_segmenter_learns_markings_and_round_trips(tmp_path: Path) -> None:
    from generators.segmenter import SegmenterConfig, SegmenterError, load_segmenter, train_segmenter

    _fake_harvest(tmp_path / "h")
    config = SegmenterConfig(image_size=(32, 40), width=8, steps=150, batch_size=8, lr=3e-3, torch_threads=1)
    summary = train_segmenter(tmp_path / "h", tmp_path / "seg", config, val_harvest=tmp_path / "h", progress=False)
    assert summary["val_iou_canonical"]["white"] > 0.8 and summary["val_iou_canonical"]["yellow"] > 0.6
    model = load_segmenter(tmp_path / "seg")
    frames, classes = read_harvest(tmp_path / "h")
    assert (model.predict(frames) == classes).mean() > 0.9
    with pytest.raises(SegmenterError, match="already holds a segmenter"):
        train_segmenter(tmp_path / "h", tmp_path / "seg", config, progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"kind": "generator"}')
    (tmp_path / "bad" / "weights.safetensors").write_bytes(b"")
    with pytest.raises(SegmenterError, match="not a segmenter checkpoint"):
        load_segmenter(tmp_path / "bad")
    with pytest.raises(InputError, match="has no manifest.csv"):
        train_segmenter(tmp_path, tmp_path / "seg2", config, progress=False)


def test_harvest_reader_views_subsets_and_errors(tmp_path: Path) -> None:
    """One reader for the segmenter and the image metrics: views in order, a chosen subset, errors naming the file."""
    from generators.image_metrics import _harvest_frames

    _fake_harvest(tmp_path / "h", count=6)
    names = harvest_frame_names(tmp_path / "h")
    assert names == [f"f{i:03d}" for i in range(6)]
    frames, classes = read_harvest(tmp_path / "h", ("canonical", "randomized"))
    assert frames.shape == (12, 32, 40, 3) and classes.shape == (12, 32, 40) and frames.dtype == np.uint8
    assert (frames[1] == (frames[0] * 0.7).astype(np.uint8)).all() and (classes[0] == classes[1]).all()
    assert (frames[0, 0, 0] == 70).all()  # RGB, not OpenCV's BGR: the yellow stripe checks the order
    assert tuple(frames[0][classes[0] == SegClass.YELLOW_LINE][0]) == (230, 200, 30)
    subset, subset_classes = read_harvest(tmp_path / "h", frames=["f004", "f001"])
    assert (subset == frames[[8, 2]]).all() and (subset_classes == classes[[8, 2]]).all()
    drawn, drawn_classes = _harvest_frames(tmp_path / "h", 3, seed=0)
    chosen = sorted(np.random.default_rng(0).choice(6, 3, replace=False))
    assert (drawn == frames[[2 * i for i in chosen]]).all() and drawn_classes.shape == (3, 32, 40)
    with pytest.raises(ValueError, match="unknown view 'segmentation'"):
        read_harvest(tmp_path / "h", ("segmentation",))
    (tmp_path / "h" / "randomized" / "f002.png").unlink()
    with pytest.raises(InputError, match="f002.png is missing or unreadable"):
        read_harvest(tmp_path / "h", ("canonical", "randomized"))
    cv2.imwrite(str(tmp_path / "h" / "canonical" / "f003.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="f003.png is 8x8 but its segmentation is not"):
        read_harvest(tmp_path / "h")
    (tmp_path / "h" / "manifest.csv").write_text("name\nf000\n")
    with pytest.raises(InputError, match="lists no frames"):
        _harvest_frames(tmp_path / "h", 3, seed=0)


# -- distillation -------------------------------------------------------------------------------------


def test_distill_student_imitates_its_teacher(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    from generators.runtime import OnnxRuntimeGenerator
    from sim2real_env.cli import main

    teacher = fitted_color_transfer(domains, tmp_path / "ct")
    config = tmp_path / "student.yaml"
    config.write_text(
        "method: student\n"
        f"out: {tmp_path / 'student'}\n"
        "model: {image_size: [32, 40], factor: 4, context_width: 8, context_layers: 2, detail_width: 4,\n"
        "  color_width: 8}\n"
        "losses: {lambda_feature: 0.1}\n"
        "training: {steps: 120, batch_size: 8, lr: 0.01, beta1: 0.9, decay_start: 60, sample_every: 120,\n"
        "  checkpoint_every: 120, load_scale: 1.0, crop_scale_min: 1.0, torch_threads: 1}\n"
        f"data: {{sim: {{root: {domains[0]}}}, real: {{root: {domains[1]}}}}}\n"
    )
    argv = ["distill", "--teacher", str(teacher), "--config", str(config), "--quiet"]
    assert main(argv) == 0
    student = load_generator(tmp_path / "student", method="student")  # its checkpoints/last
    frames = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(domains[0].glob("*.png"))])
    target = load_generator(teacher).translate(frames).astype(float)
    untrained_error = np.abs(frames.astype(float) - target).mean()
    error = np.abs(student.translate(frames).astype(float) - target).mean()
    assert error < 0.35 * untrained_error  # far closer to the teacher than the input it started from
    runtime = OnnxRuntimeGenerator(student, threads=1)
    assert runtime.optimization == "extended"  # the student's 1x1 convolutions run faster without NCHWc
    fast = runtime.translate(frames[:4])
    assert np.abs(fast.astype(int) - student.translate(frames[:4]).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="losses.teacher must name"):
        run_config_from_dict({"method": "student", "losses": {}})
    # A wrong or missing teacher is refused when the config is read, before any data is loaded.
    with pytest.raises(ValueError, match="translates 'real->canonical'; a sim->real teacher"):
        run_config_from_dict({"method": "student", "losses": {"teacher": "pretrained:stn_unet"}})
    with pytest.raises(ValueError, match="does not exist"):
        run_config_from_dict({"method": "student", "losses": {"teacher": str(tmp_path / "nope")}})


STUDENT = {
    "image_size": [32, 40],
    "factor": 4,
    "context_width": 8,
    "context_layers": 2,
    "detail_width": 4,
    "color_width": 8,
}


def test_init_from_starts_a_run_from_a_checkpoint_and_refuses_one_that_does_not_fit(
    tmp_path: Path, domains: tuple[Path, Path]
) -> None:
    from generators.checkpoint import CheckpointError
    from sim2real_env.errors import ConfigError

    teacher = fitted_color_transfer(domains, tmp_path / "ct")
    losses = {"teacher": str(teacher)}
    first = train(_run(domains, tmp_path / "first", "student", STUDENT, losses, lr=0.01), progress=False)
    start = load_generator(first)
    # One step at a negligible learning rate: the new run starts where the checkpoint ended, not at a fresh init.
    tuned = load_generator(
        train(
            _run(
                domains,
                tmp_path / "tuned",
                "student",
                STUDENT,
                losses,
                steps=1,
                decay_start=0,
                lr=1e-9,
                init_from=str(first),
            ),
            progress=False,
        )
    )
    fresh = load_generator(
        train(
            _run(domains, tmp_path / "fresh", "student", STUDENT, losses, steps=1, decay_start=0, lr=1e-9),
            progress=False,
        )
    )
    for name, weight in start.state_dict().items():
        assert torch.allclose(tuned.state_dict()[name], weight, atol=1e-6), name
    # The checkpoint says what the run started from.
    started = read_config(tmp_path / "tuned")  # its checkpoints/last
    assert started["training"]["init_from"]["checkpoint_id"] == start.checkpoint_id
    assert json.loads((tmp_path / "tuned" / "run.json").read_text())["init_from"]["path"] == str(first)
    # Runs saved before the option (no training.init_from in their record) and by its first version
    # (init_from: null) resume.
    older = _run(domains, tmp_path / "older", "student", STUDENT, losses)
    train(older, progress=False, max_steps=3)
    assert "init_from" not in read_config(tmp_path / "older")["training"]["run"]["training"]
    assert read_config(train(older, resume=True, progress=False, max_steps=1))["step"] == 4
    for config_path in (tmp_path / "older" / "checkpoints").glob("*/config.json"):
        saved = json.loads(config_path.read_text())
        saved["training"]["run"]["training"]["init_from"] = None
        config_path.write_text(json.dumps(saved))
    assert read_config(train(older, resume=True, progress=False))["step"] == 6
    assert not all(torch.equal(fresh.state_dict()[k], v) for k, v in start.state_dict().items())
    with pytest.raises(ConfigError, match=r"differs from this run's in \['color_width'\]"):
        train(
            _run(domains, tmp_path / "wide", "student", {**STUDENT, "color_width": 16}, losses, init_from=str(first)),
            progress=False,
        )
    with pytest.raises(CheckpointError, match="is a 'color_transfer' generator, expected 'student'"):
        train(_run(domains, tmp_path / "other", "student", STUDENT, losses, init_from=str(teacher)), progress=False)
    assert not (tmp_path / "wide" / "checkpoints").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="training.init_from must name a checkpoint"):
        _run(domains, tmp_path / "x", "student", STUDENT, losses, init_from="")


def test_distill_with_adversarial_and_marking_terms_trains_them_and_resumes_exactly(
    tmp_path: Path, domains: tuple[Path, Path]
) -> None:
    from generators.markings import marking_color_loss
    from generators.segmenter import Segmenter, SegmenterConfig, load_segmenter, save_segmenter

    teacher = fitted_color_transfer(domains, tmp_path / "ct")
    # A segmenter that calls every pixel a white line: the teacher's dark-blue frames are far outside white.
    labeller = Segmenter(SegmenterConfig(image_size=(32, 40), width=4, color_transfer=None))
    with torch.no_grad():
        labeller.head.weight.zero_()
        labeller.head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(int(SegClass.WHITE_LINE)), 7).float())
    segmenter = save_segmenter(labeller, tmp_path / "seg", {})
    losses = {"teacher": str(teacher), "lambda_adversarial": 0.1, "segmenter": str(segmenter), "lambda_marking": 1.0}
    assert_resumes_exactly(domains, tmp_path, "student", STUDENT, losses)
    # The marking term alone pulls the student's colours into the robot's thresholds on the segmenter's labels.
    only = {
        "teacher": str(teacher),
        "lambda_l1": 0.0,
        "lambda_feature": 0.0,
        "segmenter": str(segmenter),
        "lambda_marking": 1.0,
    }
    fitted = load_generator(
        train(
            _run(domains, tmp_path / "marking", "student", STUDENT, only, steps=60, decay_start=60, lr=0.01),
            progress=False,
        )
    )
    frames = torch.from_numpy(
        np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(domains[0].glob("*.png"))])
    )
    x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        labels = load_segmenter(segmenter)(x).argmax(1)
        assert bool((labels == SegClass.WHITE_LINE).all())
        before = marking_color_loss((load_generator(teacher)(x) + 1) / 2, labels)
        after = marking_color_loss((fitted(x) + 1) / 2, labels)
    assert before > 0.2 and after < 0.25 * before, (float(before), float(after))
    with pytest.raises(ValueError, match="lambda_marking needs losses.segmenter"):
        run_config_from_dict({"method": "student", "losses": {"teacher": str(teacher), "lambda_marking": 1.0}})
    with pytest.raises(ValueError, match="losses.lambda_adversarial must be a number"):
        run_config_from_dict({"method": "student", "losses": {"teacher": str(teacher), "lambda_adversarial": -1}})


def test_distill_colour_loss_moves_band_moments_to_the_real_frames_and_resumes_exactly(
    tmp_path: Path, domains: tuple[Path, Path]
) -> None:
    """The colour-moment term alone pulls the student's Lab band moments toward the real frames'."""
    from generators.color import band_moments
    from generators.data import FolderSpec, load_images

    teacher = fitted_color_transfer(domains, tmp_path / "ct")
    losses = {"teacher": str(teacher), "lambda_colour": 1.0, "colour_bands": 2}
    assert_resumes_exactly(domains, tmp_path, "student", STUDENT, losses)
    only = {"teacher": str(teacher), "lambda_l1": 0.0, "lambda_feature": 0.0, "lambda_colour": 1.0, "colour_bands": 2}
    fitted = load_generator(
        train(
            _run(domains, tmp_path / "colour", "student", STUDENT, only, steps=60, decay_start=60, lr=0.01),
            progress=False,
        )
    )
    sim = load_images(FolderSpec(str(domains[0])), (32, 40)).images.permute(0, 3, 1, 2).float() / 127.5 - 1
    real = load_images(FolderSpec(str(domains[1])), (32, 40)).images.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        target = band_moments(real, 2)
        before = (band_moments((sim + 1) / 2, 2) - target).abs().mean()  # the simulator's own colours
        after = (band_moments((fitted(sim) + 1) / 2, 2) - target).abs().mean()
    assert after < 0.5 * before, (float(before), float(after))
    with pytest.raises(ValueError, match="losses.colour_bands must be an integer in"):
        run_config_from_dict({"method": "student", "losses": {"teacher": str(teacher), "colour_bands": 0}})
    with pytest.raises(ValueError, match="losses.lambda_colour must be a number"):
        run_config_from_dict({"method": "student", "losses": {"teacher": str(teacher), "lambda_colour": "high"}})


# -- marking colours --------------------------------------------------------------------------------


def test_hsv_matches_opencv() -> None:
    from generators.markings import hsv

    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    hue, sat, val = hsv(torch.from_numpy(x).permute(0, 3, 1, 2))
    ref = cv2.cvtColor(x[0], cv2.COLOR_RGB2HSV)
    np.testing.assert_allclose(hue[0].numpy(), ref[..., 0], atol=0.2)  # degrees; eps in the division
    np.testing.assert_allclose(sat[0].numpy(), ref[..., 1], atol=1e-3)
    np.testing.assert_allclose(val[0].numpy(), ref[..., 2], atol=1e-6)


def test_marking_loss_is_zero_inside_the_robot_thresholds_and_flags_dark_lines_and_red() -> None:
    from generators.image_metrics import color_threshold_scores
    from generators.markings import marking_color_loss

    frame = np.full((120, 160, 3), 50, np.uint8)
    labels = np.full((120, 160), SegClass.ROAD, np.uint8)
    frame[60:, 10:20], labels[60:, 10:20] = (240, 240, 235), SegClass.WHITE_LINE
    frame[60:, 70:80], labels[60:, 70:80] = (230, 190, 30), SegClass.YELLOW_LINE
    frame[100:, 120:], labels[100:, 120:] = (220, 25, 30), SegClass.RED_LINE

    def loss(image: np.ndarray) -> float:
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        return float(marking_color_loss(rgb, torch.from_numpy(labels).long()[None]))

    # The robot's own thresholds find every marking of this frame, and the loss is zero on it.
    scores = color_threshold_scores(frame[None], labels[None])
    assert min(scores[c]["iou"] for c in ("white", "yellow", "red")) > 0.95
    assert loss(frame) == pytest.approx(0.0, abs=1e-6)
    dark = frame.copy()
    dark[60:, 10:20] = (120, 115, 110)  # a white line the detector misses (V < 150)
    glow = frame.copy()
    glow[20:40, 40:60] = (230, 40, 40)  # red where there is no red line
    assert loss(dark) > 0.05 and loss(glow) > 0.02  # the glow covers 2% of the frame
    warm = frame.copy()
    warm[60:, 10:20] = (230, 215, 155)  # a warm white line: white to the detector, and yellow too
    warm_scores = color_threshold_scores(warm[None], labels[None])
    assert warm_scores["white"]["iou"] > 0.95 and warm_scores["yellow"]["precision"] < 0.6
    assert loss(warm) > 0.015  # only the yellow-where-no-yellow-line term sees it
    rgb = torch.from_numpy(warm).permute(2, 0, 1)[None].float() / 255.0
    assert float(marking_color_loss(rgb, torch.from_numpy(labels).long()[None], false_yellow=False)) == 0.0
    duckie, duckie_labels = frame.copy(), labels.copy()
    duckie[10:30, 100:120], duckie_labels[10:30, 100:120] = (230, 190, 30), SegClass.DUCKIE
    assert float(
        marking_color_loss(
            torch.from_numpy(duckie).permute(2, 0, 1)[None].float() / 255, torch.from_numpy(duckie_labels).long()[None]
        )
    ) == pytest.approx(0.0, abs=1e-6)  # a yellow duckie is no false marking
    assert color_threshold_scores(dark[None], labels[None])["white"]["iou"] < 0.05


def test_sharpened_marking_labels_ask_for_no_red_beside_the_line() -> None:
    """Segmenter masks 2 px wider than the lines: refined, the loss flags the colour halo they hid."""
    from generators.image_metrics import COLOR_CLASSES, color_threshold_scores, detect_colors
    from generators.markings import marking_color_loss, passes_thresholds, refine_marking_labels

    sim = np.full((40, 60, 3), 60, np.uint8)
    truth = np.full((40, 60), SegClass.ROAD, np.uint8)
    sim[20:, 20:30], truth[20:, 20:30] = (220, 25, 30), SegClass.RED_LINE
    sim[20:, 45:50], truth[20:, 45:50] = (230, 190, 30), SegClass.YELLOW_LINE
    soft = truth.copy()
    soft[18:, 18:32][soft[18:, 18:32] == SegClass.ROAD] = SegClass.RED_LINE
    soft[18:, 43:52][soft[18:, 43:52] == SegClass.ROAD] = SegClass.YELLOW_LINE
    rgb = torch.from_numpy(sim).permute(2, 0, 1)[None].float() / 255.0
    sharp = refine_marking_labels(rgb, torch.from_numpy(soft).long()[None])
    np.testing.assert_array_equal(sharp[0].numpy(), truth)  # the halo goes back to road, the line stays
    missed = truth.copy()
    missed[missed == SegClass.RED_LINE] = SegClass.ROAD  # a segmenter that misses the red line
    np.testing.assert_array_equal(refine_marking_labels(rgb, torch.from_numpy(missed).long()[None])[0].numpy(), truth)
    # The same thresholds as the metric's OpenCV ones, pixel for pixel on random colours.
    passes = passes_thresholds(rgb)
    assert bool(passes[SegClass.RED_LINE][0, 25, 25]) and not bool(passes[SegClass.RED_LINE][0, 5, 5])
    noise = np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    reference = detect_colors(noise)  # on the detector's crop: rows 40 and below of a 120x160 frame
    ours = passes_thresholds(torch.from_numpy(noise).permute(0, 3, 1, 2).float() / 255.0)
    for color, cls in COLOR_CLASSES.items():
        agree = (ours[cls][:, 40:].numpy() == reference[color]).mean()
        assert agree > 0.999, (color, agree)  # float hue against OpenCV's rounded uint8 hue at the edges
    halo = sim.copy()
    halo[18:, 18:32][truth[18:, 18:32] == SegClass.ROAD] = (220, 25, 30)  # red bleeds 2 px onto the road
    halo[18:, 43:52][truth[18:, 43:52] == SegClass.ROAD] = (230, 190, 30)  # and yellow
    assert color_threshold_scores(halo[None], truth[None])["red"]["precision"] < 0.8
    out = torch.from_numpy(halo).permute(2, 0, 1)[None].float() / 255.0
    assert float(marking_color_loss(out, torch.from_numpy(soft).long()[None])) == pytest.approx(0.0, abs=1e-6)
    assert float(marking_color_loss(out, sharp)) > 0.1  # the halo is 9% of the frame
    assert float(marking_color_loss(rgb, sharp, false_colour="hinge")) == pytest.approx(0.0, abs=1e-6)
    # A road pixel just inside the red range, in a frame with a small red line (as the camera sees
    # them): the product form barely sees it, the hinge pulls it out.
    grads = {}
    small = torch.full((1, 40, 60), int(SegClass.ROAD))
    small[0, 30:33, 10:13] = SegClass.RED_LINE
    for form in ("product", "hinge"):
        barely = torch.full((1, 3, 40, 60), 60 / 255)
        barely[0, :, 30:33, 10:13] = torch.tensor([0.86, 0.1, 0.12]).view(3, 1, 1)
        barely[0, :, 5, 5] = torch.tensor([0.45, 0.19, 0.19])  # S 0.58, V 0.45: the robot calls it red
        barely.requires_grad_(True)
        marking_color_loss(barely, small, false_colour=form).backward()
        assert barely.grad is not None
        grads[form] = float(barely.grad[0, :, 5, 5].abs().sum())
    assert grads["hinge"] > 20 * grads["product"], grads
    # The no-red factor scales that one term: the halo's red part alone, not the yellow beside it.
    only_red = halo.copy()
    only_red[18:, 43:52][truth[18:, 43:52] == SegClass.ROAD] = 60
    red_out = torch.from_numpy(only_red).permute(2, 0, 1)[None].float() / 255.0
    base = float(marking_color_loss(red_out, sharp, false_colour="hinge"))
    assert base > 0.01
    assert float(marking_color_loss(red_out, sharp, false_colour="hinge", no_red_weight=5.0)) == pytest.approx(
        5 * base, rel=1e-5
    )
    assert float(marking_color_loss(red_out, sharp, false_colour="hinge", no_red_weight=0.0)) == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(ValueError, match="false_colour must be 'product' or 'hinge'"):
        marking_color_loss(rgb, sharp, false_colour="both")


def test_marginal_red_edge_pixels_are_left_out_of_the_marking_loss() -> None:
    """A barely-red antialiased edge column is flagged by depth, and the loss then asks it for nothing."""
    from generators.markings import marginal_red, marking_color_loss, red_depth

    sim = torch.full((1, 3, 20, 30), 60 / 255)
    sim[0, :, :, 10:14] = torch.tensor([220, 25, 30]).view(3, 1, 1) / 255  # the line: deep inside the range
    sim[0, :, :, 14] = torch.tensor([120, 50, 45]).view(3, 1) / 255  # its edge: S 0.63, V 0.47, just inside
    depth = red_depth(sim)
    assert float(depth[0, 0, 11]) > 0.3 and 0.0 < float(depth[0, 0, 14]) < 0.1 and float(depth[0, 0, 0]) < 0
    labels = torch.full((1, 20, 30), int(SegClass.ROAD))
    labels[0, :, 10:15] = SegClass.RED_LINE
    edge = marginal_red(sim, labels, 0.1)
    assert edge[0, :, 14].all() and int(edge.sum()) == 20  # the edge column only
    assert not marginal_red(sim, labels, 0.0).any()
    # The student paints the edge red and the road beside it too: with the edge left out, only the road counts.
    out = sim.clone()
    out[0, :, :, 14:16] = torch.tensor([200, 30, 30]).view(3, 1, 1) / 255
    road_only = labels.clone()
    road_only[0, :, 14] = SegClass.ROAD
    full = float(marking_color_loss(out, road_only, false_colour="hinge", ignore=None))
    without_edge = float(marking_color_loss(out, labels, false_colour="hinge", ignore=edge))
    one_column = out.clone()
    one_column[0, :, :, 14] = sim[0, :, :, 14]
    assert 0.0 < without_edge < full
    assert without_edge == pytest.approx(
        float(marking_color_loss(one_column, road_only, false_colour="hinge", ignore=edge)), rel=1e-5
    )  # whatever the edge column holds, it does not count


def _two_tone(top: float, bottom: float, seed: int) -> torch.Tensor:
    """Frames whose upper half has one colour level and lower half another (plus noise), in [-1, 1]."""
    frames = torch.empty(4, 3, 40, 20)
    frames[:, :, :20], frames[:, :, 20:] = top, bottom
    return frames + 0.05 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bands", [1, 4])
def test_banded_color_transfer_matches_each_height(tmp_path: Path, bands: int) -> None:
    """Sim dark above and bright below, real the other way round: one global fit cannot map both
    halves (it keeps sim's layout), per-band statistics can."""
    model = ColorTransfer(ColorTransferConfig(image_size=(40, 20), blur=0, bands=bands))
    model.sim_stats.update(_two_tone(-0.6, 0.4, 0))
    model.real_stats.update(_two_tone(0.3, -0.5, 1))
    model.refit()
    loaded = load_generator(save_generator(model, tmp_path / "ct"))
    out = loaded(_two_tone(-0.6, 0.4, 2))
    top, bottom = float(out[:, :, :10].mean()), float(out[:, :, 30:].mean())
    if bands == 1:
        assert top < bottom  # the global transfer keeps the sim's dark-above layout
    else:
        assert top == pytest.approx(0.3, abs=0.03) and bottom == pytest.approx(-0.5, abs=0.03)
    from generators.runtime import OnnxRuntimeGenerator

    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 20, 3), dtype=np.uint8)
    fast = OnnxRuntimeGenerator(loaded, threads=1).translate(frames)
    assert np.abs(fast.astype(int) - loaded.translate(frames).astype(int)).max() <= 1


def test_color_transfer_bands_are_validated() -> None:
    with pytest.raises(ValueError, match="bands"):
        ColorTransferConfig(bands=0)
    with pytest.raises(ValueError, match="bands must be at most the image height"):
        ColorTransferConfig(image_size=(8, 8), bands=12)


def test_cut_prior_takes_a_banded_color_transfer(tmp_path: Path) -> None:
    from generators.cut.model import CUT, CUTConfig

    banded = ColorTransfer(ColorTransferConfig(image_size=(40, 20), blur=0, bands=4))
    banded.sim_stats.update(_two_tone(-0.6, 0.4, 0))
    banded.real_stats.update(_two_tone(0.3, -0.5, 1))
    banded.refit()
    config = {"image_size": (40, 20), "width": 4, "blocks": 1, "nce_layers": (0, 3), "prior_checkpoint": None}
    model = CUT(CUTConfig(**config, prior_bands=4))
    model.set_prior(banded.gain, banded.offset)
    frames = _two_tone(-0.6, 0.4, 2)
    torch.testing.assert_close(model.prior(frames), banded.transfer(frames))
    loaded = load_generator(save_generator(model, tmp_path / "cut"))
    torch.testing.assert_close(loaded.prior(frames), banded.transfer(frames))
    with pytest.raises(ValueError, match="prior_bands is 1 but the prior checkpoint's colour transfer has 4"):
        CUT(CUTConfig(**config)).set_prior(banded.gain, banded.offset)


def test_student_row_bias_learns_a_colour_map_that_depends_on_the_row() -> None:
    """Without it the colour MLP cannot tell the backdrop's rows from the road's; with it, it can."""
    from generators.runtime import OnnxRuntimeGenerator
    from generators.student.model import Student, StudentConfig

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    frames = torch.rand(16, 3, 24, 32) * 1.6 - 0.8
    # Brightness that changes with the row, faster than the 1/4-resolution context branch resolves.
    ramp = 0.4 * torch.sin(torch.arange(24.0) * 2 * torch.pi / 6).view(1, 1, 24, 1)
    target = (frames + ramp).clamp(-0.95, 0.95)
    errors = {}
    for row_bias in (False, True):
        torch.manual_seed(1)
        config = StudentConfig(image_size=(24, 32), context_width=8, context_layers=2, detail_width=4, color_width=8)
        student = Student(StudentConfig(**{**config.__dict__, "row_bias": row_bias}))
        opt = torch.optim.Adam(student.parameters(), lr=0.02)
        for _ in range(150):
            loss = torch.nn.functional.l1_loss(student(frames), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        errors[row_bias] = float(torch.nn.functional.l1_loss(student(frames), target).detach())
    torch.set_num_threads(threads)
    assert errors[True] < 0.4 * errors[False], errors
    uint8 = ((frames[:4].permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)
    fast = OnnxRuntimeGenerator(student, threads=1).translate(uint8)  # exports with the bias
    assert np.abs(fast.astype(int) - student.translate(uint8).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="row_bias must be true or false"):
        StudentConfig(row_bias="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row_bias and pixel_bias are exclusive"):
        StudentConfig(row_bias=True, pixel_bias=True)
    with pytest.raises(ValueError, match=r"runs at its image size \(24, 32\), got \(24, 36\)"):
        student(torch.zeros(1, 3, 24, 36))
    with pytest.raises(ValueError, match=r"runs at its training size \(24, 32\)"):
        OnnxRuntimeGenerator(student, threads=1).translate(np.zeros((1, 24, 36, 3), np.uint8))


def test_student_camera_blur_is_a_gaussian_that_onnx_keeps_and_a_sharp_student_carries_into() -> None:
    from generators.checkpoint import load_generator, save_generator
    from generators.runtime import OnnxRuntimeGenerator
    from generators.student.model import Student, StudentConfig

    torch.manual_seed(0)
    base = StudentConfig(image_size=(24, 32), context_width=8, context_layers=2, detail_width=4, color_width=8)
    sharp = Student(StudentConfig(**{**base.__dict__, "pixel_bias": True}))
    with torch.no_grad():
        for p in sharp.parameters():
            p.normal_(0, 0.3)
    blurred = Student(StudentConfig(**{**base.__dict__, "pixel_bias": True, "camera_blur": 0.7}))
    assert blurred.adopt_weights(sharp)  # the same parameters: a sharp student fine-tunes with a blur
    frames = torch.rand(4, 3, 24, 32) * 2 - 1
    with torch.no_grad():
        a, b = sharp(frames), blurred(frames)
        expected = cv2.GaussianBlur(a[0, 1].numpy(), (5, 5), 0.7, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(b[0, 1].numpy(), expected, atol=1e-5)
    assert float((b[..., 1:] - b[..., :-1]).abs().mean()) < 0.8 * float((a[..., 1:] - a[..., :-1]).abs().mean())
    assert torch.equal(blurred.camera(a), b)  # what the distill trainer applies to the teacher's target
    assert sharp.camera(a) is a
    with tempfile.TemporaryDirectory() as tmp:
        save_generator(blurred, tmp)
        again = load_generator(tmp, method="student")
        assert again.config.camera_blur == 0.7 and torch.equal(again(frames), b)
        # Fine-tuning a blurred student against itself: its output is already a camera frame, so the
        # trainer does not blur the target again (at step 0 the student matches its teacher).
        from generators.student.train import DistillLosses, DistillTrainer

        trainer = DistillTrainer(again.train(), DistillLosses(teacher=tmp, lambda_feature=0.0), 1e-9, 0.9, 0)
        assert trainer.target_has_camera
        assert trainer.train_step(frames, frames)["l1"] < 1e-4
        sharper = Student(StudentConfig(**{**blurred.config.__dict__, "camera_blur": 0.5}))
        with pytest.raises(ValueError, match="is a student with camera_blur 0.7; the student being trained has 0.5"):
            DistillTrainer(sharper, DistillLosses(teacher=tmp), 1e-4, 0.9, 0)
    uint8 = ((frames.permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)
    fast = OnnxRuntimeGenerator(blurred, threads=1).translate(uint8)
    assert np.abs(fast.astype(int) - blurred.translate(uint8).astype(int)).max() <= 1
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="camera_blur must be a sigma in pixels in"):
            StudentConfig(camera_blur=bad)  # type: ignore[arg-type]


def test_student_pixel_bias_learns_a_pattern_fixed_in_the_frame_that_a_row_bias_cannot() -> None:
    """The sim frame's flat sky holds no structure; a teacher paints one there (the room): a fixed pattern."""
    from generators.checkpoint import load_generator, save_generator
    from generators.student.model import Student, StudentConfig

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    frames = torch.rand(16, 3, 24, 32) * 1.6 - 0.8
    # A checkerboard of 2-pixel cells: finer than the context branch, and the same in every row's mean.
    cells = ((torch.arange(24).view(24, 1) // 2 + torch.arange(32).view(1, 32) // 2) % 2).float()
    target = (frames + 0.4 * (cells - 0.5)).clamp(-0.95, 0.95)
    errors, students = {}, {}
    for kind in ("row_bias", "pixel_bias"):
        torch.manual_seed(1)
        config = StudentConfig(image_size=(24, 32), context_width=8, context_layers=2, detail_width=4, color_width=8)
        student = Student(StudentConfig(**{**config.__dict__, kind: True}))
        opt = torch.optim.Adam(student.parameters(), lr=0.02)
        for _ in range(150):
            loss = torch.nn.functional.l1_loss(student(frames), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        errors[kind] = float(torch.nn.functional.l1_loss(student(frames), target).detach())
        students[kind] = student
    torch.set_num_threads(threads)
    assert errors["pixel_bias"] < 0.4 * errors["row_bias"], errors
    with tempfile.TemporaryDirectory() as tmp:
        save_generator(students["pixel_bias"], tmp)
        again = load_generator(tmp, method="student")
        assert again.config.pixel_bias and again.row_bias is None
        assert torch.equal(again(frames), students["pixel_bias"](frames))
    # A trained row-bias student carries over into a pixel-bias one with the same outputs (init_from).
    row = students["row_bias"]
    wide = Student(StudentConfig(**{**row.config.__dict__, "row_bias": False, "pixel_bias": True}))
    assert wide.adopt_weights(row)
    assert torch.allclose(wide(frames), row(frames), atol=1e-6)
    other = Student(StudentConfig(**{**row.config.__dict__, "row_bias": False, "pixel_bias": True, "color_width": 4}))
    assert not other.adopt_weights(row)  # another colour width does not fit
