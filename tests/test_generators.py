"""Generators core and CycleGAN: protocol, checkpoints, datasets, training, resume, translate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from generators.checkpoint import (
    CheckpointError,
    flatten_state,
    load_generator,
    load_training_state,
    read_config,
    resolve_checkpoint,
    save_generator,
    unflatten_state,
)
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from generators.cyclegan.train import CycleGANLosses, CycleGANTrainer
from generators.data import Augment, DatasetError, FolderSpec, list_images, load_images
from generators.protocol import Generator
from generators.registry import build_generator
from generators.training import (
    TrainConfig,
    learning_rate,
    load_run_config,
    lr_schedulers,
    run_config_from_dict,
    train,
)
from sim2real_env.cli import main

TINY = {"image_size": [16, 20], "width": 4, "blocks": 1, "disc_width": 8, "disc_layers": 2}


def tiny_model(direction: str = "sim->real") -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig.from_dict(TINY), direction=direction)


def write_images(
    folder: Path, count: int, seed: int, tint: tuple[int, int, int], size: tuple[int, int] = (24, 32)
) -> None:
    """Simple structured frames: a tinted background with a bright stripe at a random column."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = np.empty((*size, 3), np.uint8)
        image[:] = tint
        column = int(rng.integers(2, size[1] - 6))
        image[:, column : column + 4] = 240
        image = np.clip(image.astype(int) + rng.integers(-10, 10, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), image)


@pytest.fixture()
def domains(tmp_path: Path) -> tuple[Path, Path]:
    write_images(tmp_path / "sim", 40, 1, (60, 60, 60))
    write_images(tmp_path / "real", 40, 2, (30, 90, 140))
    return tmp_path / "sim", tmp_path / "real"


def run_dict(domains: tuple[Path, Path], out: Path, steps: int = 6) -> dict[str, Any]:
    return {
        "method": "cyclegan",
        "out": str(out),
        "model": TINY,
        "training": {
            "steps": steps,
            "batch_size": 2,
            "decay_start": steps // 2,
            "sample_every": 3,
            "checkpoint_every": 2,
            "sample_count": 2,
            "log_every": 1,
        },
        "data": {"sim": {"root": str(domains[0])}, "real": {"root": str(domains[1])}},
    }


# -- protocol and translate ----------------------------------------------------------------------
def test_satisfies_protocol_and_reports_metadata() -> None:
    model = tiny_model()
    assert isinstance(model, Generator)
    assert model.method == "cyclegan" and model.direction == "sim->real"
    assert model.image_size == (16, 20) and model.normalization == "tanh[-1,1]"


def test_translate_uint8_and_float_layouts() -> None:
    model = tiny_model()
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    out = model.translate(frames)
    assert isinstance(out, np.ndarray) and out.shape == frames.shape and out.dtype == np.uint8
    floats = torch.rand(2, 3, 16, 20) * 2 - 1
    out_t = model.translate(floats)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == floats.shape
    assert out_t.min() >= -1 and out_t.max() <= 1
    np.testing.assert_array_equal(model.translate(frames), out)  # deterministic
    assert model.training  # translate restores the mode it found


def test_directions_use_different_networks() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (1, 16, 20, 3), dtype=np.uint8)
    forward = tiny_model("sim->real")
    backward = tiny_model("real->canonical")
    assert not np.array_equal(forward.translate(frames), backward.translate(frames))


@pytest.mark.parametrize(
    ("frames", "error", "pattern"),
    [
        (np.zeros((1, 16, 20, 4), np.uint8), ValueError, r"\(N, H, W, 3\) RGB"),
        (np.zeros((16, 20, 3), np.uint8), ValueError, r"\(N, H, W, 3\) RGB"),
        (np.zeros((1, 4, 16, 20), np.float32), ValueError, r"\(N, 3, H, W\)"),
        (np.zeros((1, 16, 20, 3), np.int32), TypeError, "dtype int32"),
        (np.zeros((1, 18, 20, 3), np.uint8), ValueError, "multiples of 4"),
        (np.zeros((0, 16, 20, 3), np.uint8), ValueError, "empty batch"),
        ([[0, 1]], TypeError, "numpy array or torch tensor"),
    ],
)
def test_translate_rejects_bad_frames(frames: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        tiny_model().translate(frames)


def test_registry_and_config_errors() -> None:
    with pytest.raises(ValueError, match="Unknown generator method 'cyclegn'. Did you mean 'cyclegan'"):
        build_generator("cyclegn")
    with pytest.raises(ValueError, match="Unknown CycleGANConfig key 'widht'. Did you mean 'width'"):
        CycleGANConfig.from_dict({"widht": 8})
    with pytest.raises(ValueError, match="image_size must be multiples of 4"):
        CycleGANConfig(image_size=(30, 40))
    with pytest.raises(ValueError, match="upsample must be one of"):
        CycleGANConfig(upsample="bilinear")
    assert CycleGANConfig.reference().width == 64 and CycleGANConfig.reference().blocks == 9
    assert isinstance(build_generator("cyclegan", TINY), CycleGAN)


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
@pytest.mark.parametrize("depthwise", [False, True])
def test_architecture_variants_keep_shape(upsample: str, depthwise: bool) -> None:
    model = CycleGAN(CycleGANConfig(image_size=(16, 20), width=4, blocks=2, upsample=upsample, depthwise=depthwise))
    assert model(torch.zeros(2, 3, 16, 20)).shape == (2, 3, 16, 20)
    disc_sim, _ = model.discriminators()
    assert disc_sim(torch.zeros(2, 3, 64, 64)).shape[1] == 1


@pytest.mark.parametrize("outer_kernel", [3, 5, 7])
def test_outer_kernel_sets_the_full_resolution_convolutions(outer_kernel: int) -> None:
    model = CycleGAN(CycleGANConfig(image_size=(16, 20), width=4, blocks=1, outer_kernel=outer_kernel))
    convs = [m for m in model.sim_to_real.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == convs[-1].kernel_size == (outer_kernel, outer_kernel)
    assert model(torch.zeros(1, 3, 16, 20)).shape == (1, 3, 16, 20)


def test_outer_kernel_is_validated_and_old_checkpoints_default_to_seven(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outer_kernel must be 3, 5 or 7, got 4"):
        CycleGANConfig(outer_kernel=4)
    # A checkpoint written before the field existed has no "outer_kernel": it is the paper's 7x7.
    model = CycleGAN(CycleGANConfig(image_size=(16, 20), width=4, blocks=1))
    path = save_generator(model, tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    del config["model"]["outer_kernel"]
    (path / "config.json").write_text(json.dumps(config))
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_generator(path).translate(frames), model.translate(frames))


# -- checkpoints ---------------------------------------------------------------------------------
def test_save_load_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_generator(model, tmp_path / "ckpt", step=12, data={"sim": {"images": 3}})
    loaded = load_generator(path)
    frames = np.random.default_rng(1).integers(0, 256, (4, 16, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(model.translate(frames), loaded.translate(frames))
    config = json.loads((path / "config.json").read_text())
    assert config["method"] == "cyclegan" and config["format_version"] == 1 and config["step"] == 12
    assert config["image_size"] == [16, 20] and config["git_sha"] and config["package_version"]
    assert loaded.checkpoint_id == model.checkpoint_id and loaded.checkpoint_id.startswith("cyclegan-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp directories left


def test_checkpoint_errors(tmp_path: Path) -> None:
    path = save_generator(tiny_model(), tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="is a 'cyclegan' generator, expected 'unit'"):
        load_generator(path, method="unit")
    with pytest.raises(CheckpointError, match=r"trained at image size \[16, 20\], expected \[60, 80\]"):
        load_generator(path, image_size=(60, 80))
    with pytest.raises(CheckpointError, match="translates 'sim->real', expected 'real->canonical'"):
        load_generator(path, direction="real->canonical")

    weights = path / "weights.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="weights.safetensors is corrupt"):
        load_generator(path)
    weights.write_bytes(good)

    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "width": 6}}))
    with pytest.raises(CheckpointError, match="does not match its config.json"):
        load_generator(path)
    (path / "config.json").write_text(json.dumps({**config, "method": "cyclegam"}))
    with pytest.raises(CheckpointError, match="Did you mean 'cyclegan'"):
        load_generator(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(path)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    path = save_generator(model, tmp_path / "ckpt", step=1)
    import generators.checkpoint as checkpoint_module

    def explode(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        save_generator(model, path, step=2)
    assert json.loads((path / "config.json").read_text())["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_flatten_state_round_trips_optimizer_state() -> None:
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.zeros(1, 3, 16, 20)).mean().backward()
    optimizer.step()
    tensors, skeleton = flatten_state({"opt": optimizer.state_dict(), "rng": torch.get_rng_state()})
    restored = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(restored["opt"])
    assert fresh.param_groups[0]["betas"] == (0.5, 0.999)
    assert torch.equal(restored["rng"], torch.get_rng_state())


# -- data ----------------------------------------------------------------------------------------
def test_dataset_errors_and_corrupt_images(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        list_images(FolderSpec(root=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no train images"):
        list_images(FolderSpec(root=str(tmp_path / "empty")))
    write_images(tmp_path / "mixed", 20, 0, (50, 50, 50))
    (tmp_path / "mixed" / "broken.png").write_bytes(b"not a png")
    spec = FolderSpec(root=str(tmp_path / "mixed"), split="all")
    images = load_images(spec, (12, 16))
    assert images.images.shape == (20, 12, 16, 3) and len(images.skipped) == 1
    assert images.summary()["skipped_unreadable"] == 1
    with pytest.raises(DatasetError, match=r"unreadable or corrupt image: .*broken\.png"):
        load_images(FolderSpec(root=str(tmp_path / "mixed"), split="all", on_corrupt="fail"), (12, 16))


def test_deterministic_split_and_manifest_filters(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 50, 0, (50, 50, 50))
    train_files = list_images(FolderSpec(root=str(tmp_path / "imgs")))
    val_files = list_images(FolderSpec(root=str(tmp_path / "imgs"), split="val"))
    assert train_files == list_images(FolderSpec(root=str(tmp_path / "imgs")))
    assert not set(train_files) & set(val_files) and len(train_files) + len(val_files) == 50
    rows = ["path,split,lighting"] + [
        f"frame_{i:03d}.png,{'val' if i < 5 else 'train'},{'bright' if i % 2 else 'dark'}" for i in range(50)
    ]
    (tmp_path / "imgs" / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    bright = list_images(FolderSpec(root=str(tmp_path / "imgs"), filters={"lighting": ["bright"]}))
    assert len(bright) == 23  # odd frames, minus the val ones (1, 3)
    with pytest.raises(DatasetError, match="has no column 'light'"):
        list_images(FolderSpec(root=str(tmp_path / "imgs"), filters={"light": ["bright"]}))
    with pytest.raises(DatasetError, match="no train images matching"):
        list_images(FolderSpec(root=str(tmp_path / "imgs"), filters={"lighting": ["purple"]}))


def test_augment_shapes_and_range() -> None:
    batch = torch.randint(0, 256, (3, 24, 30, 3), dtype=torch.uint8)
    out = Augment((16, 20))(batch)
    assert out.shape == (3, 3, 16, 20) and out.min() >= -1 and out.max() <= 1


def test_shared_real_data_is_found_when_present() -> None:
    from generators.data import default_real_dir

    root = default_real_dir()
    if not root.exists():
        pytest.skip(f"{root} not present on this machine")
    files = list_images(FolderSpec(root=str(root), split="val", filters={"lighting": ["bright", "normal"]}))
    assert len(files) > 20 and all(f.suffix == ".jpg" for f in files)


# -- training ------------------------------------------------------------------------------------
def test_learning_rate_schedule() -> None:
    config = TrainConfig(steps=10, decay_start=5, lr=1e-3)
    assert [round(learning_rate(s, config), 6) for s in (0, 4, 5, 7, 10)] == [1e-3, 1e-3, 1e-3, 6e-4, 0.0]
    for start in (0, 4, 7):  # the LambdaLR schedulers follow it, also when built part-way (a resume)
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
        (scheduler,) = lr_schedulers([optimizer], config, start)
        seen = []
        for _ in range(start, 10):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert seen == [learning_rate(s, config) for s in range(start, 10)]


def test_a_few_steps_lower_the_cycle_loss() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    trainer = CycleGANTrainer(model, CycleGANLosses(), lr=2e-3, beta1=0.5, seed=0)
    sim = torch.rand(4, 3, 16, 20) * 0.2 - 0.5
    real = torch.rand(4, 3, 16, 20) * 0.2 + 0.2
    losses = [trainer.train_step(sim, real)["cycle"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_joint_passes_train_the_same_function_as_separate_ones() -> None:
    """Batching the translation with the identity pass (and real with fake in the discriminator) is a
    speed-up only: the same losses and weights, step after step, up to float rounding."""
    runs = []
    for joint in (False, True):
        torch.manual_seed(0)
        trainer = CycleGANTrainer(tiny_model(), CycleGANLosses(pool_size=2), lr=2e-3, beta1=0.5, seed=0)
        trainer.joint_passes = joint
        initial = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        data = torch.Generator().manual_seed(1)
        steps = []
        for _ in range(4):
            sim = torch.rand(2, 3, 16, 20, generator=data) * 2 - 1
            real = torch.rand(2, 3, 16, 20, generator=data) * 2 - 1
            steps.append(trainer.train_step(sim, real))
        trained = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        assert (trained - initial).abs().max() > 1e-3  # the steps did train
        runs.append((steps, trained))
    (separate, weights_separate), (joint_steps, weights_joint) = runs
    for a, b in zip(separate, joint_steps, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    # Adam divides by the gradient's running RMS, so a rounding-level difference in a near-zero
    # gradient can move a weight by up to lr; all but a few weights agree to rounding.
    differ = (weights_separate - weights_joint).abs()
    assert differ.median() < 1e-6
    assert differ.gt(1e-4).float().mean() < 0.01


def test_train_resume_continues_exactly(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    straight = train(run_config_from_dict(run_dict(domains, tmp_path / "straight")), progress=False)
    run = run_config_from_dict(run_dict(domains, tmp_path / "resumed"))
    train(run, progress=False, max_steps=3)
    with pytest.raises(CheckpointError, match="already holds a run; pass --resume"):
        train(run, progress=False)
    resumed = train(run, resume=True, progress=False)
    a, b = load_generator(straight), load_generator(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    # Bit for bit: the weights file of 3 + 3 steps is the one of 6 steps.
    assert (straight / "weights.safetensors").read_bytes() == (resumed / "weights.safetensors").read_bytes()
    assert json.loads((resumed / "config.json").read_text())["step"] == 6
    # The layout: checkpoints/<step>/ every checkpoint_every (2) steps and at a stop (3), the newest
    # keep_last (3) kept, last naming the newest; the run folder loads as its last checkpoint.
    checkpoints = tmp_path / "resumed" / "checkpoints"
    assert resumed == checkpoints / "000000006"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000000003", "000000004", "000000006", "last"]
    assert (checkpoints / "last").read_text() == "000000006\n"
    assert load_generator(tmp_path / "resumed").checkpoint_id == load_generator(resumed).checkpoint_id
    assert not (tmp_path / "resumed" / "checkpoint").exists() and not (tmp_path / "resumed" / "snapshots").exists()
    assert sorted(p.name for p in (tmp_path / "resumed" / "samples").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]
    grid = cv2.imread(str(tmp_path / "resumed" / "samples" / "step_0000006.png"))
    assert grid.shape == (2 * 16, 3 * 20, 3)  # 2 fixed frames x (source | translated | cycled)
    assert any((tmp_path / "resumed" / "tensorboard").iterdir())
    other = run_config_from_dict({**run_dict(domains, tmp_path / "resumed"), "losses": {"lambda_cycle": 5.0}})
    with pytest.raises(CheckpointError, match="different config"):
        train(other, resume=True, progress=False)


def test_resume_from_a_checkpoint_without_lr_schedules(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    """Checkpoints written before the schedulers were stored resume exactly: the position comes from the step."""
    from safetensors.torch import save_file

    from generators.checkpoint import STATE_META_FILE, STATE_TENSORS_FILE

    straight = train(run_config_from_dict(run_dict(domains, tmp_path / "straight")), progress=False)
    run = run_config_from_dict(run_dict(domains, tmp_path / "old"))
    checkpoint = train(run, progress=False, max_steps=4)  # past decay_start = 3
    state = load_training_state(checkpoint)
    assert len(state.pop("lr_schedulers")) == 2 and "cuda_rng" not in state  # CPU run: no CUDA state
    for name in ("opt_g", "opt_d"):  # what the old loop saved: no initial_lr, last step's lr
        for group in state["trainer"][name]["param_groups"]:
            del group["initial_lr"]
            group["lr"] = learning_rate(3, run.training)
    tensors, skeleton = flatten_state(state)
    save_file(tensors, str(checkpoint / STATE_TENSORS_FILE))
    (checkpoint / STATE_META_FILE).write_text(json.dumps(skeleton))
    resumed = train(run, resume=True, progress=False)
    a, b = load_generator(straight), load_generator(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_run_of_the_older_layout_resumes_exactly_and_loads(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    """A run saved as ``<out>/checkpoint`` + ``<out>/best`` (before ``checkpoints/``) resumes and loads.

    Its checkpoint is rebuilt here from a 3-step run of this code (the files are the same; only
    the folder names differ), so the resumed run must equal 6 straight steps bit for bit.
    """
    import shutil

    straight = train(run_config_from_dict(run_dict(domains, tmp_path / "straight")), progress=False)
    config = run_dict(domains, tmp_path / "old")
    run = run_config_from_dict(config)
    at_three = train(run, progress=False, max_steps=3)
    old = tmp_path / "old"
    shutil.copytree(at_three, old / "checkpoint")
    shutil.copytree(at_three, old / "best")
    (old / "best" / "training_state.json").unlink()
    shutil.rmtree(old / "checkpoints")
    assert load_generator(old).checkpoint_id == load_generator(old / "checkpoint").checkpoint_id
    assert resolve_checkpoint(old, default="best") == old / "best"
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(run, progress=False)
    resumed = train(run, resume=True, progress=False)
    assert resumed == old / "checkpoints" / "000000006"
    assert (straight / "weights.safetensors").read_bytes() == (resumed / "weights.safetensors").read_bytes()
    assert load_generator(old).checkpoint_id == load_generator(straight).checkpoint_id  # now the new layout's last
    assert (old / "checkpoints" / "best" / "config.json").read_text() == (old / "best" / "config.json").read_text()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        train(run_config_from_dict(run_dict(domains, tmp_path / "never")), resume=True, progress=False)


def test_keep_last_bounds_the_step_checkpoints(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    config = run_dict(domains, tmp_path / "run", steps=8)
    config["training"]["keep_last"] = 1
    final = train(run_config_from_dict(config), progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["000000008", "last"]
    assert load_training_state(final)["lr_schedulers"]  # the kept one is a whole, resumable checkpoint
    config["training"]["keep_last"] = -1
    with pytest.raises(ValueError, match="training.keep_last must be an integer >= 0"):
        run_config_from_dict(config)


def test_run_config_errors(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="Unknown run config key 'trainig'"):
        run_config_from_dict({"method": "cyclegan", "trainig": {}})
    with pytest.raises(ValueError, match="Unknown training key 'step'. Did you mean 'steps'"):
        run_config_from_dict({"method": "cyclegan", "training": {"step": 3}})
    with pytest.raises(ValueError, match="Unknown losses key 'lambda_cycl'"):
        run_config_from_dict({"method": "cyclegan", "losses": {"lambda_cycl": 3}})
    with pytest.raises(ValueError, match="Unknown CycleGANConfig key"):
        run_config_from_dict({"method": "cyclegan", "model": {"blocs": 3}})
    path = tmp_path / "run.yaml"
    path.write_text("method: cyclegan\ntraining: {steps: 4, decay_start: 2}\n")
    assert load_run_config(path, ["training.batch_size=3"]).training.batch_size == 3
    with pytest.raises(ValueError, match="must look like key.sub=value"):
        load_run_config(path, ["training.batch_size"])
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run_config_from_dict({**run_dict(domains, tmp_path / "x"), "data": {"sim": {"root": str(empty)}}})
    with pytest.raises(DatasetError, match="has no train images"):
        train(bad, progress=False)


def test_cli_train_and_translate(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    config = tmp_path / "tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(run_dict(domains, tmp_path / "run", steps=2)))
    assert main(["train-generator", "--config", str(config), "--quiet"]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "last"  # the pointer file names the step folder
    assert main(["translate", "--checkpoint", str(checkpoint), str(domains[0]), str(tmp_path / "out")]) == 0
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 40 and cv2.imread(str(written[0])).shape == (24, 32, 3)
    single = tmp_path / "one.png"
    assert main(["translate", "--checkpoint", str(checkpoint), "--side-by-side", str(written[0]), str(single)]) == 0
    assert cv2.imread(str(single)).shape == (24, 64, 3)
    from sim2real_env.video import write_video

    write_video(tmp_path / "in.gif", [cv2.imread(str(p))[..., ::-1].copy() for p in written[:5]], fps=5)
    assert main(["translate", "--checkpoint", str(checkpoint), str(tmp_path / "in.gif"), str(tmp_path / "o.mp4")]) == 0
    assert (tmp_path / "o.mp4").stat().st_size > 0
    assert main(["translate", "--checkpoint", str(tmp_path / "nope"), str(single), str(tmp_path / "x.png")]) == 2
    assert main(["train-generator", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_bench_generators_writes_json_and_markdown(tmp_path: Path) -> None:
    args = [
        "bench-generators",
        "--cases",
        "cyclegan default",
        "--repeats",
        "2",
        "--train-steps",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    result = json.loads((tmp_path / "generators.json").read_text())
    (row,) = result["results"]
    assert row["infer_ms_per_frame_b1"] > 0 and row["train_it_per_s_b4"] > 0 and row["device"] == "cpu"
    assert "| cyclegan default | cpu | 60x80 |" in (tmp_path / "generators.md").read_text()
    assert main(["bench-generators", "--cases", "nope", "--out", str(tmp_path)]) == 2
    assert "training_step" not in result  # only with the reference case


def test_training_step_comparison_times_both_loops() -> None:
    from benchmarks.generator_speed import _markdown, training_step_comparison

    network = {"width": 4, "blocks": 1, "outer_kernel": 3}
    (row,) = training_step_comparison(sizes=((32, 40),), network=network, steps=1, rounds=1)
    assert row["image_size"] == [32, 40] and row["batch"] == 1
    assert row["it_per_s_separate_passes"] > 0 and row["it_per_s_joint_passes"] > 0
    assert row["speedup"] == pytest.approx(row["it_per_s_joint_passes"] / row["it_per_s_separate_passes"], abs=0.02)
    result = {
        "provenance": {"command": "c", "git_sha": "s", "versions": {}},
        "settings": {"repeats": 1, "train_steps": 1, "torch_threads": 2},
        "results": [],
        "training_step": [row],
    }
    assert f"| 32x40 | 1 | {row['it_per_s_separate_passes']} |" in _markdown(result)


@pytest.mark.slow
def test_sigint_checkpoints_then_resume(tmp_path: Path, domains: tuple[Path, Path]) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    config = run_dict(domains, tmp_path / "run", steps=100000)
    config["training"].update(sample_every=100000, checkpoint_every=100000, decay_start=0)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "sim2real_env.cli", "train-generator", "--config", str(path), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "run" / "tensorboard").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output  # saved and resumable, but not finished: `&&` must not go on
    assert "stopped by signal at step" in output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["stopped_by_signal"] is True
    step = read_config(tmp_path / "run")["step"]
    assert 0 < step < 100000
    assert main(["train-generator", "--config", str(path), "--resume", "--max-steps", "2", "--quiet"]) == 0
    assert read_config(tmp_path / "run")["step"] == step + 2


def test_public_entry_points(tmp_path: Path) -> None:
    import generators

    path = generators.save_generator(tiny_model(), tmp_path / "ckpt")
    loaded = generators.load_generator(path)
    assert isinstance(loaded, generators.Generator) and loaded.method == "cyclegan"
    assert isinstance(generators.build_generator("unit", {"image_size": [16, 20]}), generators.Generator)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        generators.nope  # noqa: B018


def test_interpolate_blends_weights_and_refuses_other_architectures(tmp_path: Path, capsys: Any) -> None:
    """Ends reproduce their checkpoints, the middle is the mean, and mismatches fail before writing."""
    from generators.interpolate import interpolate_checkpoints
    from generators.student.model import Student, StudentConfig

    config = StudentConfig(image_size=(16, 20), pixel_bias=True, camera_blur=0.5)
    ends = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        student = Student(config)
        for parameter in student.parameters():
            torch.nn.init.normal_(parameter, std=0.3)
        ends.append(save_generator(student.eval(), tmp_path / f"end{seed}"))
    a, b = (load_generator(p).state_dict() for p in ends)
    for weight in (0.0, 1.0, 0.25):
        out = interpolate_checkpoints(ends[0], ends[1], weight, tmp_path / f"w{weight}")
        blended = load_generator(out).state_dict()
        for name, tensor in blended.items():
            torch.testing.assert_close(tensor, (1 - weight) * a[name] + weight * b[name], rtol=0, atol=1e-6)
        recorded = read_config(out)["training"]["interpolation"]
        assert recorded["weight"] == weight and recorded["start"] == str(ends[0]) and recorded["end_id"]
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        load_generator(tmp_path / "w1.0").translate(frames), load_generator(ends[1]).translate(frames)
    )

    # An older checkpoint that left a key at its default (no "factor" in its config.json) is the same model.
    older = tmp_path / "older"
    shutil.copytree(ends[1], older)
    stored = json.loads((older / "config.json").read_text())
    del stored["model"]["factor"]
    (older / "config.json").write_text(json.dumps(stored))
    assert load_generator(interpolate_checkpoints(ends[0], older, 0.5, tmp_path / "with_older")).config == config

    def cli(end: Path, weight: str, out: str) -> int:
        return main(["interpolate", "--start", str(ends[0]), "--end", str(end), "--weight", weight, "--out", out])

    other = save_generator(Student(StudentConfig(image_size=(16, 20), color_width=8)).eval(), tmp_path / "narrow")
    assert cli(other, "0.5", str(tmp_path / "mixed")) == 2
    assert "differ in model" in capsys.readouterr().err and not (tmp_path / "mixed").exists()
    assert cli(ends[1], "1.5", str(tmp_path / "far")) == 2
    assert "weight must be a number in [0, 1]" in capsys.readouterr().err and not (tmp_path / "far").exists()
    assert cli(ends[1], "0.5", str(tmp_path / "half")) == 0
    assert "interpolate: wrote" in capsys.readouterr().out and (tmp_path / "half" / "config.json").is_file()
