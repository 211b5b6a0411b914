"""``sim2real train-generator``: the one training loop every generator method plugs into.

A run is described by a YAML file (``configs/generators/<name>.yaml``)::

    method: cyclegan
    direction: sim->real
    out: runs/generators/cyclegan
    model: {image_size: [60, 80], width: 8, blocks: 6}
    losses: {lambda_cycle: 10.0}
    training: {steps: 2000, batch_size: 4, lr: 0.0002, decay_start: 1000}
    data:
      sim: {root: runs/quickstart/dataset/canonical}
      real: {root: null, filters: {lighting: [bright, normal]}}   # null: the default real folder

``key.sub=value`` overrides on the command line change any field. The loop gives a progress bar
with losses and it/s, TensorBoard scalars, PNG sample grids (source | translated | cycled back) on
fixed validation frames, atomic checkpoints every N steps and on SIGINT/SIGTERM in
``<out>/checkpoints/<step>/`` (the newest ``keep_last`` kept, ``checkpoints/last`` naming the
newest; :mod:`sim2real_env.checkpoints`), and ``--resume`` that continues the step count,
optimisers, learning-rate schedule, image pools and RNG exactly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from generators import distributed
from generators.base import uint8_to_float
from generators.checkpoint import (
    CheckpointError,
    load_generator,
    load_training_state,
    read_config,
    resolve_checkpoint,
    save_generator,
    save_generator_step,
)
from generators.configs import config_from_dict, config_to_dict, read_yaml_mapping
from generators.data import Augment, FolderSpec, ImageSet, default_real_dir, load_images, sample_batch
from generators.protocol import DIRECTIONS
from generators.registry import METHODS, method_class, trainer_class
from sim2real_env.checkpoints import adopt_legacy_best, best_folder, discard_after, has_saved, last_folder
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message
from sim2real_env.provenance import provenance, write_json_atomic
from sim2real_env.signals import StopFlag
from sim2real_env.video import write_png


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping shared by all methods."""

    steps: int = 2000
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    #: Learning rate is constant until this step, then decays linearly to 0 at ``steps``.
    decay_start: int = 1000
    seed: int = 0
    device: str = "auto"
    #: bf16 mixed precision on CUDA (ignored on CPU, where it does not pay).
    amp: bool = True
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    #: Step checkpoints kept in ``<out>/checkpoints`` (the newest ones; 0: every one).
    keep_last: int = 3
    sample_count: int = 4
    #: Frames are loaded at this multiple of the model size, then randomly cropped to it.
    load_scale: float = 1.25
    crop_scale_min: float = 0.7
    flip: bool = False
    torch_threads: int = 2
    #: KID to fixed real *training* frames every N steps (0: off), in both feature spaces, logged to
    #: TensorBoard, ``kid.csv`` and ``kid_curve.png``; the lowest Lite2 KID is kept as ``checkpoints/best``.
    kid_every: int = 0
    kid_frames: int = 64
    #: Start a new run from this checkpoint's weights (same method and model config; a run folder or
    #: ``pretrained:<name>``): fine-tuning, e.g. a shipped student under a new loss. Fresh optimisers
    #: and step 0; ``--resume`` of the new run continues from its own checkpoints, not from this.
    init_from: str | None = None

    def __post_init__(self) -> None:
        names = (
            "steps",
            "batch_size",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "sample_count",
            "torch_threads",
        )
        check_ints("training", self, dict.fromkeys(names, (1, None)))
        check_ints("training", self, {"kid_every": (0, None), "kid_frames": (4, 4096), "keep_last": (0, None)})
        if not 0 <= self.decay_start <= self.steps:
            raise ConfigError(f"training.decay_start must be in [0, steps={self.steps}], got {self.decay_start}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ConfigError(f"training.lr must be in (0, 1), got {self.lr!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"training.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if not 1.0 <= self.load_scale <= 4.0 or not 0.1 <= self.crop_scale_min <= 1.0:
            raise ConfigError("training.load_scale must be in [1, 4] and crop_scale_min in [0.1, 1]")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ConfigError(
                f"training.init_from must name a checkpoint (a folder or pretrained:<name>), got {self.init_from!r}"
            )


@dataclass(frozen=True)
class DataConfig:
    """The two unpaired image folders; ``real.root: null`` means :func:`default_real_dir`."""

    sim: dict[str, Any] = field(default_factory=lambda: {"root": "runs/quickstart/dataset/canonical"})
    real: dict[str, Any] = field(default_factory=lambda: {"root": None})

    def folder(self, domain: str, split: str) -> FolderSpec:
        """The :class:`FolderSpec` of ``domain`` ("sim" or "real") for ``split``."""
        values = dict(getattr(self, domain))
        if values.get("root") is None:
            if domain != "real":
                raise ConfigError(
                    "data.sim.root must be set (a folder of simulator frames, e.g. from sim2real harvest)"
                )
            values["root"] = str(default_real_dir())
        values["split"] = split
        return config_from_dict(FolderSpec, values, f"data.{domain}")


@dataclass(frozen=True)
class RunConfig:
    """A whole training run, as read from YAML."""

    method: str
    direction: str = "sim->real"
    out: str = "runs/generators/run"
    model: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, Any] = field(default_factory=dict)
    training: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(unknown_name_message("generator method", self.method, METHODS))
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        cls = method_class(self.method)
        model = cls.config_class.from_dict(self.model)  # validate now, not after data loading
        losses = trainer_class(cls).losses_class.from_dict(self.losses)
        check_run = getattr(trainer_class(cls), "check_run", None)  # checks across model and losses
        if check_run is not None:
            check_run(model, losses)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (what ``run.json`` and checkpoints record)."""
        return {
            "method": self.method,
            "direction": self.direction,
            "out": self.out,
            "model": self.model,
            "losses": self.losses,
            "training": config_to_dict(self.training),
            "data": {"sim": self.data.sim, "real": self.data.real},
        }


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a run YAML, apply ``key.sub=value`` overrides (values parsed as YAML), validate."""
    return run_config_from_dict(read_yaml_mapping(path, "config file", overrides))


def run_config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """Validate a run mapping; unknown keys at any level are an error naming the key."""
    raw = dict(raw)
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for key in raw:
        if key not in known:
            raise ConfigError(unknown_name_message("run config key", str(key), known))
    if "method" not in raw:
        raise ConfigError(f"run config needs 'method' (one of {', '.join(METHODS)})")
    raw["training"] = config_from_dict(TrainConfig, raw.get("training") or {}, "training")
    raw["data"] = config_from_dict(DataConfig, raw.get("data") or {}, "data")
    for key in ("model", "losses"):
        raw[key] = raw.get(key) or {}
    return RunConfig(**raw)


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"training.device is {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return torch.device(name)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``training.lr`` at ``step``: 1, then linear decay to 0 at ``steps`` (the CycleGAN schedule)."""
    if step < config.decay_start or config.steps == config.decay_start:
        return 1.0
    return max(0.0, (config.steps - step) / (config.steps - config.decay_start))


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate of the step that starts with ``step`` steps done."""
    return config.lr * lr_factor(step, config)


def lr_schedulers(optimizers: list[torch.optim.Optimizer], config: TrainConfig, step: int) -> list[LambdaLR]:
    """One ``LambdaLR`` per optimiser following :func:`lr_factor`, positioned after ``step`` steps.

    Every parameter group starts from ``training.lr`` (as the hand-written schedule did); the
    position is derived from ``step``, so a checkpoint saved before schedulers were stored
    resumes the same way. Call ``scheduler.step()`` after each training step.
    """
    schedulers = []
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["initial_lr"] = config.lr
        # last_epoch = step - 1: the constructor's own step() lands on ``step``.
        schedulers.append(LambdaLR(optimizer, lambda at: lr_factor(at, config), last_epoch=step - 1))
    return schedulers


def save_sample_grid(path: Path, columns: list[torch.Tensor]) -> np.ndarray:
    """Rows = frames, columns = (source, translated, cycled...); ``[-1, 1]`` tensors -> PNG."""
    rows = []
    for i in range(columns[0].shape[0]):
        row = [((c[i].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy() for c in columns]
        rows.append(np.concatenate(row, axis=1))
    grid = np.concatenate(rows, axis=0)
    write_png(path, grid)
    return grid


def train(run: RunConfig, resume: bool = False, progress: bool = True, max_steps: int | None = None) -> Path:
    """Train (or resume) the run; returns the final checkpoint directory ``<out>/checkpoints/<step>``.

    ``resume`` continues from ``<out>/checkpoints/last`` (or, for a run of the older layout,
    ``<out>/checkpoint``); the run then saves in the new layout.

    ``max_steps`` stops early after that many steps of *this* call (for tests), checkpointing.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set, or an initialised process
    group) every rank calls this: ``training.batch_size`` frames per rank, gradients averaged
    over the ranks, rank 0 alone writing files; see :mod:`generators.distributed`.
    """
    cfg = run.training
    out = Path(run.out)
    checkpoint_dir = _resume_folder(out) if resume else None
    ctx = distributed.detect()
    torch.set_num_threads(distributed.threads_per_rank(ctx, cfg.torch_threads))
    device = distributed.rank_device(ctx, pick_device(cfg.device))
    distributed.init_process_group(ctx, device)
    torch.manual_seed(cfg.seed)
    model_class = method_class(run.method)
    model = model_class(model_class.config_class.from_dict(run.model), direction=run.direction).to(device)
    step = 0
    started_from: dict[str, Any] | None = None  # training.init_from's resolved folder and id, for the record
    if checkpoint_dir is not None:
        saved = read_config(checkpoint_dir)
        started_from = saved.get("training", {}).get("init_from")
        if _without_unset_init(saved.get("training", {}).get("run")) != _comparable(run):
            raise CheckpointError(
                f"--resume: {checkpoint_dir} was trained with a different config; use the same config "
                "(step count and output-unrelated fields included) or a new 'out'"
            )
        model = load_generator(checkpoint_dir, device=device)
        step = int(saved["step"])
        saved_world = int(saved.get("training", {}).get("world_size", 1))
        if saved_world != ctx.world_size and ctx.is_main:
            print(
                f"train-generator: resuming a {saved_world}-rank run on {ctx.world_size} rank(s): the global batch "
                f"is now {ctx.world_size * cfg.batch_size} frames (was {saved_world * cfg.batch_size})"
            )
    elif has_saved(out) or (out / "checkpoint" / "config.json").exists():
        raise CheckpointError(f"{out} already holds a run; pass --resume to continue it or choose another 'out'")
    if checkpoint_dir is None and cfg.init_from is not None:
        started_from = _init_weights(model, cfg.init_from, run)

    size = model.image_size
    load_size = (round(size[0] * cfg.load_scale), round(size[1] * cfg.load_scale))
    sim = load_images(run.data.folder("sim", "train"), load_size)
    real = load_images(run.data.folder("real", "train"), load_size)
    source_val = load_images(run.data.folder("sim" if run.direction == "sim->real" else "real", "val"), size)
    # Sample frames spread over the validation set (consecutive ones come from one drive and look alike).
    picks = torch.linspace(0, source_val.images.shape[0] - 1, min(cfg.sample_count, source_val.images.shape[0])).round()
    fixed = uint8_to_float(source_val.images[picks.long()].to(device))
    augment = Augment(size, scale=(cfg.crop_scale_min, 1.0), flip=cfg.flip)
    fixed_canonical = None
    if hasattr(trainer_class(model_class), "distortion_columns"):
        sim_val = load_images(run.data.folder("sim", "val"), size).images
        picks = torch.linspace(0, sim_val.shape[0] - 1, min(cfg.sample_count, sim_val.shape[0])).round().long()
        fixed_canonical = uint8_to_float(sim_val[picks].to(device))

    trainer = trainer_class(model_class)(
        model, trainer_class(model_class).losses_class.from_dict(run.losses), cfg.lr, cfg.beta1, cfg.seed
    )
    sampler = torch.Generator().manual_seed(cfg.seed)
    saved_state: dict[str, Any] = load_training_state(checkpoint_dir) if checkpoint_dir is not None else {}
    if checkpoint_dir is not None:
        trainer.load_state_dict(saved_state["trainer"])
        sampler.set_state(saved_state["sampler_rng"])
        torch.set_rng_state(saved_state["torch_rng"])
        if "cuda_rng" in saved_state and device.type == "cuda":  # absent from CPU runs and older checkpoints
            torch.cuda.set_rng_state(saved_state["cuda_rng"], device)
    schedulers = lr_schedulers(trainer.optimizers, cfg, step)
    if "lr_schedulers" in saved_state:  # older checkpoints have none: the position then comes from the step
        if len(saved_state["lr_schedulers"]) != len(schedulers):
            raise CheckpointError(
                f"--resume: {checkpoint_dir} holds {len(saved_state['lr_schedulers'])} learning-rate schedule(s), "
                f"the {run.method} trainer has {len(schedulers)} optimiser(s)"
            )
        for scheduler, schedule in zip(schedulers, saved_state["lr_schedulers"], strict=True):
            scheduler.load_state_dict(schedule)
    data_summary = {"sim": sim.summary(), "real": real.summary()}
    # bf16 autocast on CUDA needs no loss scaling; where bf16 is missing, train in fp32.
    use_amp = cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()

    saved_folder = out  # the newest step folder, once saved

    def checkpoint(at: int) -> None:
        nonlocal saved_folder
        if not ctx.is_main:
            return
        state: dict[str, Any] = {
            "trainer": trainer.state_dict(),
            "sampler_rng": sampler.get_state(),
            "torch_rng": torch.get_rng_state(),
            "lr_schedulers": [scheduler.state_dict() for scheduler in schedulers],
        }
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        training_meta: dict[str, Any] = {"run": _comparable(run), "device": str(device)}
        if started_from is not None:
            training_meta["init_from"] = started_from
        if ctx.enabled:
            training_meta["world_size"] = ctx.world_size
        saved_folder = save_generator_step(
            model,
            out,
            step=at,
            keep_last=cfg.keep_last,
            data=data_summary,
            training=training_meta,
            training_state=state,
        )

    from torch.utils.tensorboard import SummaryWriter

    run_record: dict[str, Any] = {"config": run.to_dict(), "provenance": provenance(), "device": str(device)}
    if started_from is not None:
        run_record["init_from"] = started_from
    if ctx.enabled:
        run_record["distributed"] = {"world_size": ctx.world_size, "global_batch_size": ctx.world_size * cfg.batch_size}
    writer: Any = _NoWriter()
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if checkpoint_dir is not None:
            discard_after(out, step)  # folders of a killed stretch past the resumed step
            adopt_legacy_best(out, "best")
        write_json_atomic(out / "run.json", run_record)
        writer = SummaryWriter(str(out / "tensorboard"))
    stop_at = cfg.steps if max_steps is None else min(cfg.steps, step + max_steps)
    bar = tqdm(
        total=cfg.steps, initial=step, unit="it", disable=not progress or not ctx.is_main, desc=f"train {run.method}"
    )
    started, done_here = time.perf_counter(), 0
    probe = None
    if cfg.kid_every and ctx.is_main:
        with distributed.forked_rng(ctx, device):  # rank 0's extra draws must not move its shared stream
            probe = _KidLog(out, model, source_val.images, real.images, cfg, resume)
    if probe is not None and step == 0:
        with distributed.forked_rng(ctx, device):
            probe.log(step, writer)
    averager = None
    synced_modules = distributed.trained_modules(trainer)
    if ctx.enabled:  # every rank starts from rank 0's weights, frame sampler and random stream
        distributed.broadcast_modules(synced_modules)
        distributed.broadcast_rng(sampler, device)
        distributed.broadcast_rng(torch.default_generator, device)
        averager = distributed.GradientAverager(trainer.optimizers)
    with StopFlag() as stop:
        while step < stop_at and not distributed.any_rank(stop.requested, ctx, device):
            lr = schedulers[0].get_last_lr()[0] if schedulers else learning_rate(step, cfg)
            if ctx.enabled:
                # Methods without an optimiser (the baselines) fit on the whole global batch on every rank.
                whole = not trainer.optimizers
                sim_batch = _rank_batch(sim, augment, cfg, sampler, device, ctx, whole)
                real_batch = _rank_batch(real, augment, cfg, sampler, device, ctx, whole)
            else:
                sim_batch = augment(sample_batch(sim.images, cfg.batch_size, sampler, device))
                real_batch = augment(sample_batch(real.images, cfg.batch_size, sampler, device))
            with (
                distributed.forked_rng(ctx, device, distributed.step_seed(cfg.seed, step, ctx.rank)),
                torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp),
            ):
                losses = trainer.train_step(sim_batch, real_batch)
            for scheduler in schedulers:
                scheduler.step()
            if ctx.enabled:
                distributed.broadcast_modules(synced_modules, buffers_only=True)
            step += 1
            done_here += 1
            if step % cfg.log_every == 0 or step == stop_at:
                losses = distributed.mean_losses(losses, ctx, device)
                rate = done_here / (time.perf_counter() - started)
                for name, value in losses.items():
                    writer.add_scalar(f"loss/{name}", value, step)
                writer.add_scalar("lr", lr, step)
                writer.add_scalar("it_per_s", rate, step)
                bar.set_postfix(
                    {k: f"{v:.3f}" for k, v in losses.items() if k in ("g_total", "cycle", "d_real", "recon", "style")}
                )
            bar.update(1)
            if (step % cfg.sample_every == 0 or step == cfg.steps) and ctx.is_main:
                with distributed.forked_rng(ctx, device):
                    grid = save_sample_grid(
                        out / "samples" / f"step_{step:07d}.png", [fixed, *trainer.sample_columns(fixed)]
                    )
                    writer.add_image("samples", grid, step, dataformats="HWC")
                    if fixed_canonical is not None:  # real->canonical models: distorted | corrected | canonical
                        columns = trainer.distortion_columns(fixed_canonical)  # type: ignore[attr-defined]  # STN-U-Net's
                        grid = save_sample_grid(out / "samples" / f"distortion_step_{step:07d}.png", columns)
                        writer.add_image("distortion_samples", grid, step, dataformats="HWC")
            if probe is not None and (step % cfg.kid_every == 0 or step == stop_at):
                with distributed.forked_rng(ctx, device):
                    probe.log(step, writer)
            if step % cfg.checkpoint_every == 0 and step < stop_at:
                checkpoint(step)
        stopped = distributed.any_rank(stop.requested, ctx, device)
    if averager is not None:
        averager.close()
    distributed.check_in_sync([model, *synced_modules], ctx, device)
    checkpoint(step)
    wall = time.perf_counter() - started
    if ctx.is_main:
        write_json_atomic(
            out / "run.json",
            {
                **run_record,
                "final_step": step,
                "steps_this_call": done_here,
                "wall_s": wall,
                "stopped_by_signal": stopped,
            },
        )
    bar.close()
    writer.close()
    distributed.barrier(ctx)  # the checkpoint and run.json exist before any rank returns
    if stopped and ctx.is_main:
        print(f"train-generator: stopped by signal at step {step}; resume with --resume")
    return saved_folder if ctx.is_main else (last_folder(out) or out)


def _init_weights(model: Any, source: str, run: RunConfig) -> dict[str, Any]:
    """Copy ``source``'s weights into the fresh ``model`` (``training.init_from``), checking they fit.

    The model configs must be equal, unless the method knows how to carry the weights across a
    difference (``adopt_weights``, e.g. a student's row bias into a pixel bias, same outputs).
    Returns what the run started from (the resolved folder and its checkpoint id), for the record.
    """
    try:
        folder = resolve_checkpoint(source)
        start = load_generator(folder, method=run.method, direction=run.direction, device=model.device)
    except (CheckpointError, FileNotFoundError) as exc:
        raise CheckpointError(f"training.init_from: {exc}") from exc
    record = {"path": str(folder), "checkpoint_id": start.checkpoint_id, "step": read_config(folder).get("step")}
    ours, theirs = config_to_dict(model.config), config_to_dict(start.config)
    if ours == theirs:
        model.load_state_dict(start.state_dict())
        return record
    adopt = getattr(model, "adopt_weights", None)
    if adopt is not None and adopt(start):
        return record
    differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    raise ConfigError(
        f"training.init_from {source}: its model config differs from this run's in {differ} "
        f"({ {k: theirs.get(k) for k in differ} } vs { {k: ours.get(k) for k in differ} }); "
        "use the same model section"
    )


def _resume_folder(out: Path) -> Path:
    """The checkpoint ``--resume`` continues: ``checkpoints/last``, else an older run's ``checkpoint/``."""
    last = last_folder(out)
    if last is not None:
        return last
    legacy = out / "checkpoint"
    if (legacy / "config.json").exists() or legacy.with_name(".checkpoint.old").is_dir():
        return legacy
    raise CheckpointError(f"--resume: {out} holds no checkpoint (no checkpoints/last, no checkpoint/)")


def _rank_batch(
    images: ImageSet,
    augment: Augment,
    cfg: TrainConfig,
    sampler: torch.Generator,
    device: torch.device,
    ctx: distributed.DistContext,
    whole: bool,
) -> torch.Tensor:
    """Rows of this rank in the global batch: the ``world_size x batch_size`` frames one process would draw.

    Every rank draws and augments the whole global batch from the same generator states (the
    augmentation is a crop-and-resize, small beside the networks) and keeps its own rows, so the
    frames equal a single-process run with ``batch_size = world_size x batch_size``.
    """
    batch = augment(sample_batch(images.images, cfg.batch_size * ctx.world_size, sampler, device))
    return batch if whole else distributed.local_part(batch, ctx)


class _NoWriter:
    """TensorBoard's ``SummaryWriter`` on ranks other than 0, which write nothing."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""

    def add_image(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class _KidLog:
    """Every ``kid_every`` steps: KID of translated fixed sim val frames to fixed real train frames.

    Rows go to ``<out>/kid.csv`` (step, wall-clock seconds summed over resumes, one column per
    feature space) and ``kid_curve.png``; the checkpoint with the lowest Lite2 KID so far is
    ``<out>/checkpoints/best`` (model selection on training frames only: the real val split stays unseen).
    """

    def __init__(
        self, out: Path, model: Any, sim_val: torch.Tensor, real_train: torch.Tensor, cfg: TrainConfig, resume: bool
    ) -> None:
        import csv

        from generators.realism import RealismProbe
        from sim2real_env.frames import resize_frames

        self.out, self.model = out, model
        size = model.image_size

        def spread(images: torch.Tensor, count: int) -> np.ndarray:
            picks = torch.linspace(0, images.shape[0] - 1, min(count, images.shape[0])).round().long()
            return resize_frames(images[picks].numpy(), size)

        self.probe = RealismProbe(spread(sim_val, cfg.kid_frames), spread(real_train, 2 * cfg.kid_frames))
        self.rows: list[dict[str, float]] = []
        path = out / "kid.csv"
        if resume and path.exists():
            with open(path, newline="") as handle:
                self.rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        self.wall_offset = self.rows[-1]["wall_s"] if self.rows else 0.0
        self.best = min((r["kid_lite2"] for r in self.rows), default=float("inf"))
        self.started = time.perf_counter()

    def log(self, step: int, writer: Any) -> None:
        """Measure, append, plot, and keep ``best`` when Lite2 KID improved."""
        from generators.realism import plot_curve
        from sim2real_env.provenance import write_text_atomic

        if self.rows and int(self.rows[-1]["step"]) == step:
            return
        kids = self.probe(self.model)
        row = {"step": float(step), "wall_s": self.wall_offset + time.perf_counter() - self.started, **kids}
        self.rows.append(row)
        for name, value in kids.items():
            writer.add_scalar(f"realism/{name}", value, step)
        header = list(row)
        lines = [",".join(header)] + [",".join(f"{r[k]:.6g}" for k in header) for r in self.rows]
        write_text_atomic(self.out / "kid.csv", "\n".join(lines) + "\n")
        if len(self.rows) >= 2:
            plot_curve(self.rows, self.out / "kid_curve.png")
        if kids["kid_lite2"] < self.best:
            self.best = kids["kid_lite2"]
            training = {"selected_by": "kid_lite2", **row}
            save_generator(self.model, best_folder(self.out), step=step, training=training)


def _comparable(run: RunConfig) -> dict[str, Any]:
    """The parts of a run that must not change across ``--resume`` (all but the output path and ``keep_last``)."""
    data = run.to_dict()
    data.pop("out")
    data["training"].pop("keep_last")  # bookkeeping: may change, and older checkpoints lack it
    return _without_unset_init(json.loads(json.dumps(data)))


def _without_unset_init(comparable: Any) -> Any:
    """``comparable`` without ``training.init_from: null`` (runs saved before the option lack the key)."""
    training = comparable.get("training") if isinstance(comparable, dict) else None
    if isinstance(training, dict) and "init_from" in training and training["init_from"] is None:
        comparable = {**comparable, "training": {k: v for k, v in training.items() if k != "init_from"}}
    return comparable
