"""Bad input and faults (issue 17): one clear error naming the thing, and nothing written.

One table. Each row builds its inputs under a fresh folder, then runs either a ``sim2real``
command line (through :func:`sim2real_env.cli.main`: the expected exit status, the message on
stderr, no traceback) or a Python call (the expected exception type and message). Afterwards the
folder and the shared checkpoint must be exactly as they were: no output, no temporary file, no
``harvest.json`` claimed by a refused run.

"Disk full" rows run under ``RLIMIT_FSIZE`` (with ``SIGXFSZ`` ignored): every write past 2 KiB
fails with ``EFBIG`` in this process and in the ffmpeg it starts, the nearest thing to a full disk
that needs neither root nor a mounted file system. Rows about permissions are skipped as root.

Separate tests below the table cover what leftovers of killed writers become on the next write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from generators.checkpoint import load_generator, read_config, save_generator
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from generators.data import DatasetError, FolderSpec, list_images, load_images
from generators.runtime import OnnxRuntimeGenerator
from sim2real_env.cli import main
from sim2real_env.errors import ConfigError
from sim2real_env.provenance import atomic_directory, write_text_atomic
from sim2real_env.video import write_image, write_png, write_video

TINY = {"image_size": [16, 20], "width": 4, "blocks": 1, "disc_width": 8, "disc_layers": 2}
FILE_LIMIT = 2048  # bytes a file may reach in "disk full" rows; every written test image is larger
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- inputs -----------------------------------------------------------------------------------
def noise(seed: int = 0, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """RGB noise: compresses badly, so its PNG (12 KiB) is always over FILE_LIMIT."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def png(path: Path, seed: int = 0, size: tuple[int, int] = (64, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), noise(seed, size))
    return path


def jpeg(path: Path, seed: int = 0, truncated: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", noise(seed))
    assert ok
    raw = data.tobytes()
    path.write_bytes(raw[: len(raw) * 2 // 3] if truncated else raw)
    return path


def frames_folder(folder: Path, names: Sequence[str] = ("a.png", "b.png", "c.png")) -> Path:
    for i, name in enumerate(names):
        (jpeg if name.lower().endswith((".jpg", ".jpeg")) else png)(folder / name, seed=i)
    return folder


def mkdir(path: Path, mode: int | None = None) -> Path:
    path.mkdir(parents=True)
    if mode is not None:
        path.chmod(mode)
    return path


def video(path: Path, count: int = 4) -> Path:
    write_video(path, [noise(i) for i in range(count)], fps=5)
    return path


def image_root(tmp: Path, manifest: str | None = None, count: int = 4) -> Path:
    """``tmp/imgs`` with ``count`` frames and, if given, this ``MANIFEST.csv`` text."""
    root = tmp / "imgs"
    for i in range(count):
        png(root / f"f{i}.png", seed=i, size=(12, 16))
    if manifest is not None:
        (root / "MANIFEST.csv").write_text(manifest)
    return root


def spec(tmp: Path, **kwargs: Any) -> FolderSpec:
    return FolderSpec(root=str(tmp / "imgs"), split="all", **kwargs)


def tiny_model() -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig.from_dict(TINY), direction="sim->real")


def harvest_json(tmp: Path, config: Any) -> None:
    mkdir(tmp / "h")
    (tmp / "h" / "harvest.json").write_text(json.dumps({"config": config}))


def config_file(tmp: Path, text: str) -> None:
    """``tmp/run.yaml`` with this generator config (its out under ``tmp``) and a frames folder."""
    frames_folder(tmp / "in", ("a.png",))
    (tmp / "run.yaml").write_text(f"out: {tmp / 'o'}\n{text}")


# -- the table --------------------------------------------------------------------------------
Call = Sequence[str] | Callable[[Path, Path], object]


@dataclass(frozen=True)
class Case:
    """One bad input: what to build, what to run, what must come out."""

    id: str
    call: Call  # CLI argv ("{tmp}", "{ckpt}" are filled in) or fn(tmp, checkpoint)
    error: type[BaseException] | int  # exception type for a call, exit status for argv
    message: str  # must appear in the exception's message / on stderr
    setup: Callable[[Path], object] = lambda tmp: None
    disk_full: bool = False
    skip_as_root: bool = False


def translate(*args: str) -> list[str]:
    return ["translate", "--checkpoint", "{ckpt}", *args]


TRAIN_SEGMENTER = ["train-segmenter", "--harvest", "{tmp}/h", "--out", "{tmp}/seg", "--quiet"]
DISTILL = ["distill", "--teacher", "pretrained:cyclegan", "--sim-dir", "{tmp}/in", "out={tmp}/d"]
IMAGE_METRICS = ["image-metrics", "--harvest", "{tmp}/h", "--out", "{tmp}/m"]
PLOT_KID = ["plot-kid", "--out", "{tmp}/k.png"]
TRAIN_YAML = ["train-generator", "--config", "{tmp}/run.yaml", "--sim-dir", "{tmp}/in"]
HARVEST = ["harvest", "--out", "{tmp}/h", "--episodes", "1", "--steps", "1", "--quiet"]


def _spoil_weights(tmp: Path, how: str) -> None:
    """Copy the test checkpoint to ``tmp/spoiled`` with one tensor made NaN or integer."""
    from safetensors.torch import load_file, save_file

    from generators.checkpoint import resolve_checkpoint

    shutil.copytree(resolve_checkpoint("pretrained:student"), tmp / "spoiled")
    path = tmp / "spoiled" / "weights.safetensors"
    weights = load_file(str(path))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] * float("nan") if how == "nan" else weights[name].round().to(torch.int32)
    save_file(weights, str(path))


def _spoil_config(tmp: Path, value: object) -> None:
    """Copy the shipped student to ``tmp/spoiled`` with its config.json replaced (``"size"``: a wrong image_size)."""
    from generators.checkpoint import resolve_checkpoint

    shutil.copytree(resolve_checkpoint("pretrained:student"), tmp / "spoiled")
    path = tmp / "spoiled" / "config.json"
    if value == "size":
        config = json.loads(path.read_text())
        config["image_size"] = [60, 80]
        value = config
    path.write_text(json.dumps(value))


def _wrap_with_output_size(checkpoint: Path, size: tuple[int, int]) -> object:
    """A wrapper asked for an absurd output size, around a tiny fake camera env (no simulator)."""
    import gymnasium as gym

    from generators.checkpoint import load_generator
    from sim2real_env.wrappers import Sim2RealObservation

    class Camera(gym.Env):  # type: ignore[type-arg]
        observation_space = gym.spaces.Box(0, 255, (60, 80, 3), np.uint8)
        action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    return Sim2RealObservation(Camera(), load_generator(checkpoint, direction="sim->real"), output_size=size)


CASES = [
    # -- translate: success reported, nothing written (item 2) --
    Case(
        "translate-folder-disk-full",
        translate("--side-by-side", "{tmp}/in", "{tmp}/out"),
        2,
        "cannot write",
        setup=lambda t: frames_folder(t / "in"),
        disk_full=True,
    ),
    Case(
        "translate-folder-disk-full-keeps-old-output",
        translate("--side-by-side", "{tmp}/in", "{tmp}/out"),
        2,
        "cannot write",
        setup=lambda t: (frames_folder(t / "in"), png(t / "out" / "a.png", seed=9)),
        disk_full=True,
    ),
    Case(
        "translate-image-disk-full",
        translate("--side-by-side", "{tmp}/one.png", "{tmp}/o.png"),
        2,
        "o.png",
        setup=lambda t: png(t / "one.png"),
        disk_full=True,
    ),
    Case(
        "translate-mp4-disk-full",
        translate("--side-by-side", "{tmp}/in.mp4", "{tmp}/o.mp4"),
        2,
        "cannot write",
        setup=lambda t: video(t / "in.mp4"),
        disk_full=True,
    ),
    Case(
        "translate-gif-disk-full",
        translate("--side-by-side", "{tmp}/in.gif", "{tmp}/o.gif"),
        2,
        "cannot write",
        setup=lambda t: video(t / "in.gif"),
        disk_full=True,
    ),
    Case(
        "translate-folder-unwritable",
        translate("{tmp}/in", "{tmp}/out"),
        2,
        "cannot write",
        setup=lambda t: (frames_folder(t / "in"), mkdir(t / "out", 0o500)),
        skip_as_root=True,
    ),
    # -- translate: silent overwrite (item 3) --
    Case(
        "translate-folder-name-collision",
        translate("{tmp}/in", "{tmp}/out"),
        2,
        "a.jpg and a.png",
        setup=lambda t: frames_folder(t / "in", ("a.jpg", "a.png", "b.png")),
    ),
    Case(
        "translate-folder-collision-by-case",
        translate("{tmp}/in", "{tmp}/out"),
        2,
        "would both be written as",
        setup=lambda t: frames_folder(t / "in", ("A.png", "a.jpg")),
    ),
    Case(
        "translate-folder-into-itself",
        translate("{tmp}/in", "{tmp}/in"),
        2,
        "is the input",
        setup=lambda t: frames_folder(t / "in"),
    ),
    Case(
        "translate-image-onto-itself",
        translate("{tmp}/one.png", "{tmp}/one.png"),
        2,
        "is the input",
        setup=lambda t: png(t / "one.png"),
    ),
    # -- translate: crashes inside dependencies (item 9) --
    Case(
        "translate-empty-mp4",
        translate("{tmp}/e.mp4", "{tmp}/o.mp4"),
        2,
        "cannot read video",
        setup=lambda t: (t / "e.mp4").write_bytes(b""),
    ),
    Case(
        "translate-corrupt-mp4",
        translate("{tmp}/c.mp4", "{tmp}/o.mp4"),
        2,
        "c.mp4",
        setup=lambda t: (t / "c.mp4").write_bytes(b"not a video" * 100),
    ),
    Case(
        "translate-corrupt-gif",
        translate("{tmp}/c.gif", "{tmp}/o.gif"),
        2,
        "cannot read video",
        setup=lambda t: (t / "c.gif").write_bytes(b"GIF89a" + b"\0" * 50),
    ),
    Case(
        "translate-truncated-jpeg",
        translate("{tmp}/cut.jpg", "{tmp}/o.png"),
        2,
        "cut.jpg is a truncated JPEG",
        setup=lambda t: jpeg(t / "cut.jpg", truncated=True),
    ),
    Case(
        "translate-folder-with-truncated-jpeg",
        translate("{tmp}/in", "{tmp}/out"),
        2,
        "b.jpg is a truncated JPEG",
        setup=lambda t: (png(t / "in" / "a.png"), jpeg(t / "in" / "b.jpg", truncated=True)),
    ),
    Case(
        "translate-folder-corrupt-last-frame",
        translate("--batch-size", "1", "{tmp}/in", "{tmp}/out"),
        2,
        "cannot read image",
        setup=lambda t: (frames_folder(t / "in", ("a.png", "b.png")), (t / "in" / "c.png").write_bytes(b"junk")),
    ),
    Case(
        "translate-image-garbage",
        translate("{tmp}/bad.jpg", "{tmp}/o.png"),
        2,
        "cannot read image",
        setup=lambda t: (t / "bad.jpg").write_bytes(b"junk"),
    ),
    # -- translate: kinds, names, arguments --
    Case(
        "translate-image-to-video-name",
        translate("{tmp}/one.png", "{tmp}/o.mp4"),
        2,
        "output must end in",
        setup=lambda t: png(t / "one.png"),
    ),
    Case(
        "translate-image-to-unknown-suffix",
        translate("{tmp}/one.png", "{tmp}/o.txt"),
        2,
        "output must end in",
        setup=lambda t: png(t / "one.png"),
    ),
    Case(
        "translate-folder-onto-a-file",
        translate("{tmp}/in", "{tmp}/notes"),
        2,
        "is a file",
        setup=lambda t: (frames_folder(t / "in"), (t / "notes").write_text("mine")),
    ),
    Case(
        "translate-folder-to-image-name",
        translate("{tmp}/in", "{tmp}/out.png"),
        2,
        "output must be a folder",
        setup=lambda t: frames_folder(t / "in"),
    ),
    Case(
        "translate-video-to-image-name",
        translate("{tmp}/in.gif", "{tmp}/o.png"),
        2,
        "output must end in",
        setup=lambda t: video(t / "in.gif"),
    ),
    Case("translate-missing-input", translate("{tmp}/nope.png", "{tmp}/o.png"), 2, "nope.png does not exist"),
    Case(
        "translate-not-an-image",
        translate("{tmp}/notes.txt", "{tmp}/o.png"),
        2,
        "is not a folder, an image",
        setup=lambda t: (t / "notes.txt").write_text("mine"),
    ),
    Case(
        "translate-empty-folder",
        translate("{tmp}/in", "{tmp}/out"),
        2,
        "holds no images",
        setup=lambda t: mkdir(t / "in"),
    ),
    Case(
        "translate-batch-size-0",
        translate("--batch-size", "0", "{tmp}/one.png", "{tmp}/o.png"),
        2,
        "batch size",
        setup=lambda t: png(t / "one.png"),
    ),
    Case(
        "translate-missing-checkpoint",
        ["translate", "--checkpoint", "{tmp}/nock", "{tmp}/one.png", "{tmp}/o.png"],
        2,
        "nock does not exist",
        setup=lambda t: png(t / "one.png"),
    ),
    Case(
        "translate-corrupt-checkpoint",
        ["translate", "--checkpoint", "{tmp}/ck", "{tmp}/one.png", "{tmp}/o.png"],
        2,
        "config.json is corrupt",
        setup=lambda t: (png(t / "one.png"), mkdir(t / "ck"), (t / "ck" / "config.json").write_text("{")),
    ),
    # -- Generator.translate (item 9) --
    Case(
        "generator-nan-float-frames",
        lambda t, c: tiny_model().translate(np.full((1, 3, 16, 20), np.nan, np.float32)),
        ValueError,
        "NaN or infinite",
    ),
    Case(
        "generator-inf-tensor",
        lambda t, c: tiny_model().translate(torch.full((2, 3, 16, 20), float("inf"))),
        ValueError,
        "NaN or infinite",
    ),
    Case(
        "generator-4x4-frames",
        lambda t, c: tiny_model().translate(np.zeros((1, 4, 4, 3), np.uint8)),
        ValueError,
        "CycleGAN.translate: frames of 4x4 are too small",
    ),
    Case(
        "generator-4x4-frames-onnxruntime",
        lambda t, c: OnnxRuntimeGenerator(tiny_model()).translate(np.zeros((1, 4, 4, 3), np.uint8)),
        ValueError,
        "too small",
    ),
    Case(
        "generator-int32-frames",
        lambda t, c: tiny_model().translate(np.zeros((1, 16, 20, 3), np.int32)),
        TypeError,
        "got dtype int32",
    ),
    Case(
        "generator-uint8-channels-first",
        lambda t, c: tiny_model().translate(np.zeros((1, 3, 16, 20), np.uint8)),
        ValueError,
        "(N, H, W, 3)",
    ),
    Case(
        "generator-size-not-multiple",
        lambda t, c: tiny_model().translate(np.zeros((1, 18, 20, 3), np.uint8)),
        ValueError,
        "multiples of 4",
    ),
    Case(
        "generator-empty-batch",
        lambda t, c: tiny_model().translate(np.zeros((0, 16, 20, 3), np.uint8)),
        ValueError,
        "empty batch",
    ),
    Case(
        "generator-list-input",
        lambda t, c: tiny_model().translate([[0]]),  # type: ignore[arg-type]
        TypeError,
        "got list",
    ),
    # -- image folders and MANIFEST.csv (items 4 and 9) --
    Case(
        "manifest-without-path-column-and-filters",
        lambda t, c: list_images(spec(t, filters={"lighting": ["bright"]})),
        DatasetError,
        "MANIFEST.csv has no 'path' column",
        setup=lambda t: image_root(t, "file,lighting\nf0.png,bright\nf1.png,dark\n"),
    ),
    Case(
        "manifest-without-path-column",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "has no 'path' column (columns: file, split)",
        setup=lambda t: image_root(t, "file,split\nf0.png,train\n"),
    ),
    Case(
        "manifest-header-only",
        lambda t, c: list_images(spec(t, filters={"lighting": ["bright"]})),
        DatasetError,
        "MANIFEST.csv lists no images",
        setup=lambda t: image_root(t, "path,lighting\n"),
    ),
    Case(
        "manifest-empty-file",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "has no 'path' column (columns: none)",
        setup=lambda t: image_root(t, ""),
    ),
    Case(
        "manifest-row-leaves-the-folder",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "line 3 (path '../secret.png'): paths must be relative",
        setup=lambda t: (image_root(t, "path\nf0.png\n../secret.png\n"), png(t / "secret.png")),
    ),
    Case(
        "manifest-row-absolute",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "paths must be relative",
        setup=lambda t: (png(t / "elsewhere.png"), image_root(t, f"path\n{t / 'elsewhere.png'}\n")),
    ),
    Case(
        "manifest-row-sneaks-out-midway",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "line 2 (path 'sub/../../x.png')",
        setup=lambda t: image_root(t, "path\nsub/../../x.png\n"),
    ),
    Case(
        "manifest-row-missing-file",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "line 3 (path 'gone.png'): no such file",
        setup=lambda t: image_root(t, "path\nf0.png\ngone.png\n"),
    ),
    Case(
        "manifest-row-repeated",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "line 4 (path './f0.png'): the same file as line 2",
        setup=lambda t: image_root(t, "path\nf0.png\nf1.png\n./f0.png\n"),
    ),
    Case(
        "manifest-row-empty-path",
        lambda t, c: list_images(spec(t)),
        DatasetError,
        "line 3 (path ''): the path is empty",
        setup=lambda t: image_root(t, "path,split\nf0.png,train\n,train\n"),
    ),
    Case(
        "manifest-filter-column-missing",
        lambda t, c: list_images(spec(t, filters={"light": ["bright"]})),
        DatasetError,
        "has no column 'light'",
        setup=lambda t: image_root(t, "path,lighting\nf0.png,bright\n"),
    ),
    Case(
        "filters-without-manifest",
        lambda t, c: list_images(spec(t, filters={"lighting": ["bright"]})),
        DatasetError,
        "which does not exist",
        setup=lambda t: image_root(t),
    ),
    Case(
        "images-truncated-jpeg-on-corrupt-fail",
        lambda t, c: load_images(spec(t, on_corrupt="fail"), (12, 16)),
        DatasetError,
        "cut.jpg",
        setup=lambda t: (image_root(t, count=2), jpeg(t / "imgs" / "cut.jpg", truncated=True)),
    ),
    Case(
        "images-all-truncated",
        lambda t, c: load_images(spec(t), (12, 16)),
        DatasetError,
        "all 2 images are unreadable",
        setup=lambda t: [jpeg(t / "imgs" / f"cut{i}.jpg", seed=i, truncated=True) for i in range(2)],
    ),
    Case("images-missing-folder", lambda t, c: list_images(spec(t)), DatasetError, "imgs does not exist"),
    Case("folder-spec-bad-split", lambda t, c: FolderSpec(root=str(t), split="test"), DatasetError, "'test'"),
    Case(
        "folder-spec-bad-on-corrupt",
        lambda t, c: FolderSpec(root=str(t), on_corrupt="ignore"),
        DatasetError,
        "on_corrupt must be 'skip' or 'fail'",
    ),
    # -- harvest: a failed run must not lock its folder (item 7) --
    Case("harvest-camera-0x0", [*HARVEST, "--camera", "0x0"], 2, "camera_width must be an integer in [8, 1920]"),
    Case(
        "harvest-duplicate-maps",
        [*HARVEST, "--maps", "small_loop,small_loop", "--camera", "32x24"],
        2,
        "names small_loop more than once",
    ),
    Case(
        "harvest-out-is-a-file",
        ["harvest", "--out", "{tmp}/notes.txt", "--quiet"],
        2,
        "notes.txt is a file",
        setup=lambda t: (t / "notes.txt").write_text("mine"),
    ),
    Case(
        "harvest-record-is-not-a-mapping",
        [*HARVEST, "--camera", "32x24"],
        2,
        "harvest.json is not a harvest record",
        setup=lambda t: harvest_json(t, 3),
    ),
    Case(
        "harvest-different-settings",
        [*HARVEST, "--camera", "32x24"],
        2,
        "different settings",
        setup=lambda t: harvest_json(t, {"maps": ["loop_empty"]}),
    ),
    Case(
        "harvest-folder-not-a-dataset",
        [*HARVEST, "--camera", "32x24"],
        2,
        "holds no harvest.json",
        setup=lambda t: (mkdir(t / "h"), (t / "h" / "notes.txt").write_text("mine")),
    ),
    Case("harvest-episodes-0", [*HARVEST, "--episodes", "0"], 2, "episodes_per_map must be an integer >= 1"),
    Case("harvest-noise-out-of-range", [*HARVEST, "--noise", "2"], 2, "noise_std must be in [0, 1]"),
    Case("harvest-unknown-map", [*HARVEST, "--maps", "small_lop"], 2, "Did you mean 'small_loop'"),
    Case("harvest-no-maps", [*HARVEST, "--maps", ","], 2, "non-empty list of map names"),
    Case("harvest-camera-syntax", [*HARVEST, "--camera", "160x"], 2, "camera size must look like 160x120"),
    # -- atomic writers --
    Case(
        "write-image-disk-full",
        lambda t, c: write_image(t / "x.png", noise()),
        OSError,
        "x.png",
        disk_full=True,
    ),
    Case(
        "write-png-disk-full-keeps-old-file",
        lambda t, c: write_png(t / "x.png", noise(1)),
        OSError,
        "File too large",
        setup=lambda t: png(t / "x.png"),
        disk_full=True,
    ),
    Case(
        "write-text-disk-full-keeps-old-file",
        lambda t, c: write_text_atomic(t / "notes.md", "x" * 10_000),
        OSError,
        "notes.md",
        setup=lambda t: (t / "notes.md").write_text("mine"),
        disk_full=True,
    ),
    Case(
        "write-mp4-disk-full",
        lambda t, c: write_video(t / "v.mp4", [noise(i) for i in range(4)], fps=5),
        OSError,
        "disk full?",
        disk_full=True,
    ),
    Case(
        "write-video-no-frames",
        lambda t, c: write_video(t / "v.mp4", [], fps=5),
        ValueError,
        "no frames",
    ),
    Case("write-png-wrong-suffix", lambda t, c: write_png(t / "x.jpg", noise()), ValueError, "must end in .png"),
    Case(
        "write-image-float",
        lambda t, c: write_image(t / "x.png", noise().astype(np.float32)),
        ValueError,
        "uint8",
    ),
    # -- other commands: checked before anything runs or is written --
    Case(
        "bench-wrapper-unknown-kind",
        [
            "bench-wrapper",
            "--kinds",
            "dumy",
            "--envs",
            "1",
            "--cameras",
            "32x24",
            "--generators",
            "cyclegan default",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--ppo-steps",
            "0",
            "--out",
            "{tmp}/b",
        ],
        2,
        "kinds must be among ('dummy', 'subproc')",
    ),
    Case(
        "bench-wrapper-zero-envs",
        ["bench-wrapper", "--envs", "0", "--out", "{tmp}/b"],
        2,
        "env counts must be >= 1",
    ),
    Case(
        "bench-generators-zero-repeats",
        ["bench-generators", "--repeats", "0", "--cases", "cyclegan default", "--out", "{tmp}/b"],
        2,
        "repeats, train steps and threads must be >= 1",
    ),
    Case(
        "stylize-zero-steps",
        ["stylize", "--style", "{tmp}/style.png", "--steps", "0", "--quiet", "{tmp}/in", "{tmp}/out"],
        2,
        "steps must be an integer >= 1",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), png(t / "style.png")),
    ),
    Case(
        "stylize-name-collision",
        ["stylize", "--style", "{tmp}/style.png", "--steps", "1", "--quiet", "{tmp}/in", "{tmp}/out"],
        2,
        "a.jpg and a.png",
        setup=lambda t: (frames_folder(t / "in", ("a.jpg", "a.png")), png(t / "style.png")),
    ),
    Case(
        "stylize-missing-style",
        ["stylize", "--style", "{tmp}/nostyle.png", "--quiet", "{tmp}/in", "{tmp}/out"],
        2,
        "nostyle.png is missing or unreadable",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "stylize-size-0x0",
        ["stylize", "--style", "{tmp}/style.png", "--size", "0x0", "--quiet", "{tmp}/in", "{tmp}/out"],
        2,
        "at least 8x8",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), png(t / "style.png")),
    ),
    Case("drive-camera-0x0", ["drive", "--out", "{tmp}/d", "--camera", "0x0"], 2, "camera_width must be"),
    Case("video-wrong-suffix", ["video", "--checkpoint", "{ckpt}", "--out", "{tmp}/v.avi"], 2, "must end in"),
    Case(
        "model-card-missing-run",
        ["model-card", "--checkpoint", "{ckpt}", "--run", "{tmp}/run.json", "--out", "{tmp}/card.md"],
        2,
        "run.json does not exist",
    ),
    Case(
        "interpolate-missing-end",
        ["interpolate", "--start", "{ckpt}", "--end", "{tmp}/nope", "--weight", "0.5", "--out", "{tmp}/b"],
        2,
        "nope does not exist",
    ),
    Case(
        "interpolate-weight-nan",
        ["interpolate", "--start", "{ckpt}", "--end", "{ckpt}", "--weight", "nan", "--out", "{tmp}/b"],
        2,
        "weight must be a number in [0, 1]",
    ),
    Case(
        "interpolate-another-method",
        [
            "interpolate",
            "--start",
            "{ckpt}",
            "--end",
            "pretrained:color_transfer",
            "--weight",
            "0.5",
            "--out",
            "{tmp}/b",
        ],
        2,
        "differ in method",
    ),
    Case(
        "eval-canonical-no-dataset",
        ["eval-canonical", "--checkpoint", "pretrained:stn_unet", "--dataset", "{tmp}/ds", "--out", "{tmp}/e"],
        2,
        "ds/canonical does not exist",
    ),
    Case("evaluate-missing-config", ["evaluate", "--config", "{tmp}/eval.yaml"], 2, "eval.yaml does not exist"),
    Case(
        "evaluate-yaml-syntax-error",
        ["evaluate", "--config", "{tmp}/eval.yaml"],
        2,
        "eval.yaml is not valid YAML (line 2, column 1)",
        setup=lambda tmp: (tmp / "eval.yaml").write_text("name: [a\n"),
    ),
    Case(
        "evaluate-agent-json-is-a-list",
        ["evaluate", "--config", "{tmp}/eval.yaml"],
        2,
        "agent.json must hold a JSON object describing an agent, got list",
        setup=lambda tmp: (
            (tmp / "ag").mkdir(),
            (tmp / "ag" / "agent.json").write_text("[1]"),
            (tmp / "eval.yaml").write_text(f"name: t\nagents: [{{name: a, path: {tmp / 'ag'}}}]\n"),
        ),
    ),
    Case("harvest-negative-seed", [*HARVEST, "--seed", "-3"], 2, "--seed must be an integer >= 0, got '-3'"),
    Case(
        "transfer-benchmark-unknown-pipeline",
        [
            "transfer-benchmark",
            "--config",
            "configs/benchmark/quickstart.yaml",
            "out={tmp}/b",
            "agents_dir={tmp}/a",
            "pipelines=[{{name: raw, pipeline: rawr}}]",
        ],
        2,
        "Did you mean 'raw'",
    ),
    Case(
        "transfer-benchmark-bad-stage",
        [
            "transfer-benchmark",
            "--config",
            "configs/benchmark/quickstart.yaml",
            "--stages",
            "train,evaluat",
            "out={tmp}/b",
            "agents_dir={tmp}/a",
        ],
        2,
        "Did you mean 'evaluate'",
    ),
    Case(
        "train-generator-bad-override",
        ["train-generator", "--config", "configs/generators/cyclegan.yaml", "--sim-dir", "{tmp}/in", "steps=5"],
        2,
        "Unknown run config key 'steps'",
    ),
    # -- train-segmenter --
    Case("train-segmenter-missing-harvest", TRAIN_SEGMENTER, 2, "h has no manifest.csv"),
    Case(
        "train-segmenter-harvest-without-manifest",
        TRAIN_SEGMENTER,
        2,
        "give a `sim2real harvest` folder",
        setup=lambda t: mkdir(t / "h"),
    ),
    Case(
        "train-segmenter-harvest-is-a-file",
        ["train-segmenter", "--harvest", "{tmp}/notes", "--out", "{tmp}/seg", "--quiet"],
        2,
        "notes has no manifest.csv",
        setup=lambda t: (t / "notes").write_text("mine"),
    ),
    Case(
        "train-segmenter-steps-0",
        [*TRAIN_SEGMENTER, "--steps", "0"],
        2,
        "SegmenterConfig.steps must be an integer in [1, 10000000], got 0",
    ),
    Case("train-segmenter-width-0", [*TRAIN_SEGMENTER, "--width", "0"], 2, "SegmenterConfig.width must be"),
    Case(
        "train-segmenter-batch-size-0",
        [*TRAIN_SEGMENTER, "--batch-size", "0"],
        2,
        "SegmenterConfig.batch_size must be an integer in [1, 1024]",
    ),
    Case("train-segmenter-augment-bogus", [*TRAIN_SEGMENTER, "--augment", "bogus"], 2, "invalid choice: 'bogus'"),
    # -- distill --
    Case(
        "distill-unknown-model-key",
        [*DISTILL, "model.bogus=1"],
        2,
        "Unknown StudentConfig key 'bogus'",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-steps-0",
        [*DISTILL, "training.steps=0"],
        2,
        "training.steps must be an integer >= 1",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-factor-0",
        [*DISTILL, "model.factor=0"],
        2,
        "StudentConfig.factor must be an integer in [1, 16], got 0",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-init-from-missing",
        [*DISTILL, "training.init_from={tmp}/nope"],
        2,
        "does not exist",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-init-from-another-method",
        [*DISTILL, "training.init_from=pretrained:cyclegan"],
        2,
        "is a 'cyclegan' generator, expected 'student'",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-marking-without-segmenter",
        [*DISTILL, "losses.lambda_marking=5"],
        2,
        "losses.lambda_marking needs losses.segmenter",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-segmenter-not-a-segmenter",
        [*DISTILL, "losses.lambda_marking=5", "losses.segmenter={tmp}/in"],
        2,
        "needs config.json and weights.safetensors",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-adversarial-negative",
        [*DISTILL, "losses.lambda_adversarial=-1"],
        2,
        "losses.lambda_adversarial must be a number in [0, 1000], got -1",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-pixel-and-row-bias",
        [*DISTILL, "model.row_bias=true", "model.pixel_bias=true"],
        2,
        "row_bias and pixel_bias are exclusive",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-camera-blur-out-of-range",
        [*DISTILL, "model.camera_blur=3"],
        2,
        "StudentConfig.camera_blur must be a sigma in pixels in [0, 1], got 3",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-false-colour-unknown",
        [*DISTILL, "losses.marking_false_colour=sum"],
        2,
        "losses.marking_false_colour must be 'product' or 'hinge', got 'sum'",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-no-red-negative",
        [*DISTILL, "losses.marking_no_red=-1"],
        2,
        "losses.marking_no_red must be a number in [0, 100], got -1",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-camera-student-teacher-other-blur",
        ["distill", "--teacher", "pretrained:student", "--sim-dir", "{tmp}/in", "out={tmp}/d", "model.camera_blur=0.7"],
        2,
        "losses.teacher pretrained:student is a student with camera_blur 0.5; the student being trained has 0.7",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-red-core-without-sim-colours",
        [*DISTILL, "losses.marking_red_core=0.1"],
        2,
        "losses.marking_red_core needs losses.marking_sim_colours",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "distill-sim-colours-not-bool",
        [*DISTILL, "losses.marking_sim_colours=maybe"],
        2,
        "losses.marking_sim_colours must be true or false, got 'maybe'",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    # -- plot-kid --
    Case(
        "plot-kid-run-without-kid-csv",
        [*PLOT_KID, "--run", "a={tmp}/run"],
        2,
        "run has no kid.csv",
        setup=lambda t: mkdir(t / "run"),
    ),
    Case("plot-kid-missing-run", [*PLOT_KID, "--run", "a={tmp}/nope"], 2, "nope has no kid.csv"),
    Case(
        "plot-kid-bad-key",
        [*PLOT_KID, "--run", "a={tmp}/run", "--key", "kid_bogus"],
        2,
        "invalid choice: 'kid_bogus'",
    ),
    Case(
        "plot-kid-name-twice",
        [*PLOT_KID, "--run", "a={tmp}/run", "--run", "a={tmp}/run"],
        2,
        "name 'a' is given twice",
        setup=lambda t: mkdir(t / "run"),
    ),
    Case("plot-kid-empty-name", [*PLOT_KID, "--run", "={tmp}/run"], 2, "must be PATH or NAME=PATH"),
    # -- image-metrics --
    Case(
        "image-metrics-name-twice",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:cyclegan", "--checkpoint", "pretrained:cyclegan"],
        2,
        "name 'cyclegan' is given twice",
        setup=lambda t: mkdir(t / "h"),
    ),
    Case(
        "image-metrics-domain-without-image-ops",
        [*IMAGE_METRICS, "--checkpoint", "cam=domain:real_proxy_camera"],
        2,
        "domain 'real_proxy_camera' has no image operations",
        setup=lambda t: mkdir(t / "h"),
    ),
    Case(
        "image-metrics-unknown-domain",
        [*IMAGE_METRICS, "--checkpoint", "p=domain:real_proxy_imag"],
        2,
        "Did you mean 'real_proxy_image'",
        setup=lambda t: mkdir(t / "h"),
    ),
    Case(
        "image-metrics-real-split-bogus",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:cyclegan", "--real-split", "bogus"],
        2,
        "invalid choice: 'bogus'",
    ),
    Case(
        "image-metrics-unknown-pretrained",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:stn_une"],
        2,
        "Unknown pretrained checkpoint 'stn_une'. Did you mean 'stn_unet'",
    ),
    Case(
        "image-metrics-wrong-direction",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:stn_unet"],
        2,
        "translates 'real->canonical', expected 'sim->real'",
    ),
    Case(
        "image-metrics-segmenter-not-a-segmenter",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:cyclegan", "--segmenter", "{tmp}/in"],
        2,
        "in needs config.json and weights.safetensors",
        setup=lambda t: frames_folder(t / "in", ("a.png",)),
    ),
    Case(
        "image-metrics-harvest-without-manifest",
        [*IMAGE_METRICS, "--checkpoint", "pretrained:cyclegan"],
        2,
        "h has no manifest.csv",
        setup=lambda t: mkdir(t / "h"),
    ),
    Case(
        "image-metrics-empty-name",
        [*IMAGE_METRICS, "--checkpoint", "=pretrained:cyclegan"],
        2,
        "must be PATH or NAME=PATH",
    ),
    # -- model-card --
    Case(
        "model-card-missing-table",
        ["model-card", "--checkpoint", "{ckpt}", "--table", "{tmp}/missing.md", "--out", "{tmp}/card.md"],
        2,
        "missing.md does not exist",
    ),
    Case(
        "model-card-missing-metrics",
        ["model-card", "--checkpoint", "{ckpt}", "--metrics", "{tmp}/missing.json", "--out", "{tmp}/card.md"],
        2,
        "missing.json does not exist",
    ),
    # -- checkpoints whose weights would translate to black or grey frames (item 9) --
    Case(
        "translate-nan-weights",
        ["translate", "--checkpoint", "{tmp}/spoiled", "{tmp}/in", "{tmp}/out"],
        2,
        "holds NaN or infinite values",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), _spoil_weights(t, "nan")),
    ),
    Case(
        "translate-integer-weights",
        ["translate", "--checkpoint", "{tmp}/spoiled", "{tmp}/in", "{tmp}/out"],
        2,
        "the model holds torch.float32",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), _spoil_weights(t, "int")),
    ),
    Case(
        "translate-config-json-is-42",
        ["translate", "--checkpoint", "{tmp}/spoiled", "{tmp}/in", "{tmp}/out"],
        2,
        "config.json must hold a JSON object, got int",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), _spoil_config(t, 42)),
    ),
    Case(
        "translate-config-json-is-null",
        ["translate", "--checkpoint", "{tmp}/spoiled", "{tmp}/in", "{tmp}/out"],
        2,
        "config.json must hold a JSON object, got NoneType",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), _spoil_config(t, None)),
    ),
    Case(
        "translate-image-size-disagrees-with-model",
        ["translate", "--checkpoint", "{tmp}/spoiled", "{tmp}/in", "{tmp}/out"],
        2,
        "config.json says image_size [60, 80], its model config [120, 160]",
        setup=lambda t: (frames_folder(t / "in", ("a.png",)), _spoil_config(t, "size")),
    ),
    Case(
        "video-out-under-a-file",
        ["video", "--checkpoint", "{ckpt}", "--steps", "2", "--out", "{tmp}/afile/v.mp4"],
        2,
        "afile is in the way: a file stands where a folder is needed",
        setup=lambda t: (t / "afile").write_text("mine"),
    ),
    # -- meaningless sizes and counts (item 6) --
    Case(
        "train-generator-negative-max-steps",
        [*TRAIN_YAML, "--max-steps", "-5"],
        2,
        "--max-steps must be an integer >= 1, got '-5'",
        setup=lambda t: config_file(t, "method: cyclegan\n"),
    ),
    Case(
        "train-generator-image-size-2000",
        [*TRAIN_YAML, "model.image_size=[2000, 2000]"],
        2,
        "image_size must be at most 1024 pixels a side",
        setup=lambda t: config_file(t, "method: cyclegan\n"),
    ),
    Case(
        "eval-canonical-crop-above-one",
        [
            "eval-canonical",
            "--checkpoint",
            "pretrained:stn_unet",
            "--dataset",
            "{tmp}/ds",
            "--out",
            "{tmp}/o",
            "--crop",
            "1.5",
        ],
        2,
        "--crop must be a fraction in (0, 1], got '1.5'",
    ),
    Case(
        "wrapper-output-size-100000",
        lambda tmp, ckpt: _wrap_with_output_size(ckpt, (100_000, 100_000)),
        ConfigError,
        "output_size must be (height, width), integers in [1, 4096]",
    ),
    Case(
        "wrapper-output-size-bool",
        lambda tmp, ckpt: _wrap_with_output_size(ckpt, (True, 80)),
        ConfigError,
        "output_size must be (height, width), integers in [1, 4096]",
    ),
    # -- generator configs of the other methods --
    Case(
        "cut-mode-fast",
        TRAIN_YAML,
        2,
        "losses.mode must be one of ('cut', 'fastcut'), got 'fast'",
        setup=lambda t: config_file(t, "method: cut\nlosses:\n  mode: fast\n"),
    ),
    Case(
        "cut-nce-layers-out-of-range",
        TRAIN_YAML,
        2,
        "CUTConfig.nce_layers must be increasing distinct integers",
        setup=lambda t: config_file(t, "method: cut\nmodel:\n  nce_layers: [99]\n"),
    ),
    Case(
        "cut-lambda-marking-without-segmenter",
        TRAIN_YAML,
        2,
        "losses.lambda_marking needs losses.segmenter",
        setup=lambda t: config_file(t, "method: cut\nlosses:\n  lambda_marking: 1.0\n"),
    ),
    Case(
        "cut-unknown-model-key-override",
        [*TRAIN_YAML, "model.bogus=1"],
        2,
        "Unknown CUTConfig key 'bogus'",
        setup=lambda t: config_file(t, "method: cut\n"),
    ),
    Case(
        "student-factor-0",
        TRAIN_YAML,
        2,
        "StudentConfig.factor must be an integer in [1, 16], got 0",
        setup=lambda t: config_file(t, "method: student\nmodel:\n  factor: 0\n"),
    ),
    Case(
        "color-transfer-blur-4",
        TRAIN_YAML,
        2,
        "ColorTransferConfig.blur must be one of (0, 3, 5), got 4",
        setup=lambda t: config_file(t, "method: color_transfer\nmodel:\n  blur: 4\n"),
    ),
    Case(
        "identity-unknown-run-key",
        TRAIN_YAML,
        2,
        "Unknown run config key 'bogus'",
        setup=lambda t: config_file(t, "method: identity\nbogus: 1\n"),
    ),
    Case(
        "train-generator-unknown-method",
        TRAIN_YAML,
        2,
        "Unknown generator method 'cyclegn'. Did you mean 'cyclegan'",
        setup=lambda t: config_file(t, "method: cyclegn\n"),
    ),
    Case(
        "train-generator-missing-config",
        ["train-generator", "--config", "{tmp}/nope.yaml", "--sim-dir", "{tmp}/in"],
        2,
        "nope.yaml does not exist",
    ),
]


# -- the test ---------------------------------------------------------------------------------
def snapshot(*roots: Path) -> dict[str, Any]:
    """Every path under ``roots`` with its kind and content hash (files) or mode (folders)."""
    found: dict[str, Any] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = ("dir", path.stat().st_mode)
    return found


@contextlib.contextmanager
def disk_full(limit: int = FILE_LIMIT) -> Iterator[None]:
    """No file may grow past ``limit`` bytes (``EFBIG``, as on a full disk) inside the block."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_generator(tiny_model(), tmp_path_factory.mktemp("shared") / "checkpoint")


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.skipif(IS_ROOT, reason="root writes anywhere")] if case.skip_as_root else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_bad_input_gives_one_clear_error_and_writes_nothing(
    case: Case, tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "case"
    work.mkdir()
    case.setup(work)
    before = snapshot(work, checkpoint)
    try:
        with disk_full() if case.disk_full else contextlib.nullcontext():
            if callable(case.call):
                assert isinstance(case.error, type)
                with pytest.raises(case.error) as caught:
                    case.call(work, checkpoint)
                text = str(caught.value)
            else:
                argv = [a.format(tmp=work, ckpt=checkpoint) for a in case.call]
                status: object
                try:
                    status = main(argv)
                except SystemExit as exc:  # argparse refusing an argument
                    status = exc.code
                text = capsys.readouterr().err
                assert status == case.error, text
                assert "Traceback" not in text
        after = snapshot(work, checkpoint)
    finally:
        for path in work.rglob("*"):  # undo the permission rows, so tmp_path can be removed
            if path.is_dir():
                path.chmod(0o755)
    assert case.message in text
    assert after == before, "the failed call changed files on disk"


def test_table_size() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 100  # issue 17: a table of at least 100 bad inputs


# -- leftovers of killed writers (item 7) -----------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_write_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = tmp_path / f".ckpt.tmp-{_dead_pid()}@{host}-abc123"
    alive = tmp_path / f".ckpt.tmp-{os.getpid()}@{host}-def456"
    other_host = tmp_path / f".ckpt.tmp-{_dead_pid()}@not-{host}-ghi789"
    old_style = tmp_path / ".ckpt.tmp-k2j4h5g6"  # before owners were recorded: only by age
    young_old_style = tmp_path / ".ckpt.tmp-p9o8i7u6"
    other_target = tmp_path / f".ckpt2.tmp-{_dead_pid()}@{host}-jkl012"
    for folder in (dead, alive, other_host, old_style, young_old_style, other_target):
        folder.mkdir()
        (folder / "weights.safetensors").write_bytes(b"half")
    week_ago = time.time() - 7 * 86400
    os.utime(old_style, (week_ago, week_ago))
    with atomic_directory(tmp_path / "ckpt") as tmp:
        (tmp / "config.json").write_text("{}")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"ckpt", alive.name, other_host.name, young_old_style.name, other_target.name}


def test_kill_9_during_a_checkpoint_write_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from sim2real_env.provenance import atomic_directory\n"
        "with atomic_directory(Path(sys.argv[1])) as tmp:\n"
        "    (tmp / 'weights.safetensors').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    target = tmp_path / "checkpoint"
    for _ in range(2):
        killed = subprocess.run([sys.executable, "-c", script, str(target)], cwd=Path(__file__).parent.parent)
        assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".checkpoint.tmp-*"))) == 1  # the second write removed the first's
    save_generator(tiny_model(), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_crash_between_the_renames_is_recovered_by_the_next_read(tmp_path: Path) -> None:
    path = save_generator(tiny_model(), tmp_path / "checkpoint", step=7)
    path.rename(tmp_path / ".checkpoint.old")  # what a crash after the first rename leaves
    assert read_config(path)["step"] == 7  # --resume reads the config first
    assert load_generator(path).checkpoint_id.startswith("cyclegan-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_crash_between_the_renames_is_recovered_by_the_next_write(tmp_path: Path) -> None:
    (tmp_path / ".ckpt.old").mkdir()
    (tmp_path / ".ckpt.old" / "step").write_text("1")
    with atomic_directory(tmp_path / "ckpt") as tmp:
        (tmp / "step").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert (tmp_path / "ckpt" / "step").read_text() == "2"


def test_failed_second_rename_puts_the_previous_version_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with atomic_directory(tmp_path / "ckpt") as tmp:
        (tmp / "step").write_text("1")
    original = Path.rename

    def rename(self: Path, target: Any) -> Any:
        if self.name.startswith(".ckpt.tmp-"):
            raise OSError(28, "No space left on device")
        return original(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="No space left"), atomic_directory(tmp_path / "ckpt") as tmp:
        (tmp / "step").write_text("2")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert (tmp_path / "ckpt" / "step").read_text() == "1"


# -- the good paths the fixes must keep -------------------------------------------------------
def test_truncated_jpeg_is_skipped_and_reported(tmp_path: Path) -> None:
    image_root(tmp_path, count=3)
    jpeg(tmp_path / "imgs" / "good.jpg")
    cut = jpeg(tmp_path / "imgs" / "cut.jpg", truncated=True)
    images = load_images(spec(tmp_path), (12, 16))
    assert images.skipped == [str(cut)] and len(images.paths) == 4


def test_manifest_rows_select_and_split(tmp_path: Path) -> None:
    image_root(tmp_path, "path,split,lighting\nf0.png,train,bright\n./f1.png,val,bright\nf2.png,train,dark\n")
    bright = list_images(FolderSpec(root=str(tmp_path / "imgs"), filters={"lighting": ["bright"]}))
    assert bright == [tmp_path / "imgs" / "f0.png"]
    assert len(list_images(spec(tmp_path, filters={"lighting": ["bright"]}))) == 2


def test_translate_folder_writes_every_frame_and_no_staging_folder(tmp_path: Path, checkpoint: Path) -> None:
    frames_folder(tmp_path / "in", ("a.jpg", "b.png", "c.jpeg"))
    assert main(["translate", "--checkpoint", str(checkpoint), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    written = cv2.imread(str(tmp_path / "out" / "a.png"))
    assert written is not None and written.shape == (64, 64, 3)


def test_translate_gif_keeps_its_frame_rate(tmp_path: Path, checkpoint: Path) -> None:
    video(tmp_path / "in.gif", count=3)
    assert main(["translate", "--checkpoint", str(checkpoint), str(tmp_path / "in.gif"), str(tmp_path / "o.mp4")]) == 0
    import imageio.v2 as imageio

    reader = imageio.get_reader(tmp_path / "o.mp4")
    assert reader.get_meta_data()["fps"] == pytest.approx(5.0)
    reader.close()


def test_overrides_may_sit_before_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``key=value`` overrides are read wherever they sit after the command (item 10)."""
    config = tmp_path / "eval.yaml"
    config.write_text("name: t\nagents: [{name: expert, expert: true}]\n")
    assert main(["evaluate", "episodes=0", "--config", str(config), "--quiet"]) == 2
    assert "episodes must be an integer >= 1, got 0" in capsys.readouterr().err  # the override was applied
    with pytest.raises(SystemExit):
        main(["evaluate", "--config", str(config), "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
