"""Generator checkpoints: a directory with ``config.json`` + ``weights.safetensors``.

Optional training state (discriminators, optimisers, schedulers, RNG, image pools) sits beside it
in ``training_state.safetensors`` + ``training_state.json`` so that a run resumes exactly. No
pickle anywhere: tensors go to safetensors, everything else to JSON.

A checkpoint is written into a temporary sibling directory and renamed into place, so a crash
never leaves half a checkpoint under the final name. A training run keeps its checkpoints in the
layout of :mod:`sim2real_env.checkpoints` (``<out>/checkpoints/<step>/``, ``last``, ``best``);
every loader here takes a run folder or a ``last`` pointer as well as a checkpoint directory, and
the folders of the older layout (``<out>/checkpoint``, ``<out>/best``, ``generators/pretrained/*``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from generators.configs import config_to_dict
from generators.registry import METHODS, method_class
from sim2real_env import __version__ as package_version
from sim2real_env.checkpoints import LAST, resolve_run_path, save_step
from sim2real_env.errors import Sim2RealError
from sim2real_env.names import unknown_name_message
from sim2real_env.provenance import atomic_directory, git_sha, recover_directory

if TYPE_CHECKING:
    from generators.base import TorchGenerator

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_META_FILE = "training_state.json"


class CheckpointError(Sim2RealError, ValueError):
    """A checkpoint is missing, corrupt, or not what the caller asked for."""


# -- nested state <-> (tensors, JSON skeleton) -----------------------------------------------------
def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split nested dicts/lists into a flat tensor dict and a JSON skeleton referencing it."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [walk(k, f"{path}/k{i}"), walk(v, f"{path}/{i}")] for i, (k, v) in enumerate(value.items())
                ]
            }
        if isinstance(value, (list, tuple)):
            return {
                "__tuple__" if isinstance(value, tuple) else "__list__": [
                    walk(v, f"{path}/{i}") for i, v in enumerate(value)
                ]
            }
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store {type(value).__name__} at {path!r} in a checkpoint")

    return tensors, walk(obj, prefix)


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            return [unflatten_state(v, tensors) for v in skeleton["__list__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        raise CheckpointError(f"unrecognised entry in training state: {sorted(skeleton)}")
    return skeleton


# -- save ---------------------------------------------------------------------------------------
def save_generator(
    generator: TorchGenerator,
    path: str | Path,
    *,
    step: int = 0,
    data: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``generator`` (and optional resumable ``training_state``) as a checkpoint directory.

    Example::

        save_generator(model, "runs/cyclegan/checkpoints/best", step=1000)
    """
    path = Path(path)
    _check_method(generator)
    with atomic_directory(path) as tmp:
        write_generator(generator, tmp, step=step, data=data, training=training, training_state=training_state)
    generator.checkpoint_id = checkpoint_id(path)
    return path


def save_generator_step(
    generator: Any,
    out: str | Path,
    *,
    step: int,
    keep_last: int,
    data: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Save ``<out>/checkpoints/<step>``, point ``last`` at it and prune (:mod:`sim2real_env.checkpoints`)."""
    _check_method(generator)

    def write(folder: Path) -> None:
        write_generator(generator, folder, step=step, data=data, training=training, training_state=training_state)

    folder = save_step(out, step, write, keep_last=keep_last)
    generator.checkpoint_id = checkpoint_id(folder)
    return folder


def _check_method(generator: Any) -> str:
    method = getattr(generator, "method", None)
    if method not in METHODS:
        raise ValueError(f"save_generator: {type(generator).__name__} is not a registered generator method")
    return str(method)


def write_generator(
    generator: Any,
    folder: Path,
    *,
    step: int = 0,
    data: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> None:
    """The checkpoint files of ``generator`` into an existing (temporary) ``folder``."""
    config = {
        "kind": "generator",
        "format_version": FORMAT_VERSION,
        "method": _check_method(generator),
        "direction": generator.direction,
        "image_size": list(generator.image_size),
        "normalization": generator.normalization,
        "model": config_to_dict(generator.config),
        "training": training or {},
        "data": data or {},
        "step": int(step),
        "package_version": package_version,
        "git_sha": git_sha(),
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    weights = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS_FILE))
    if training_state is not None:
        tensors, skeleton = flatten_state(training_state)
        save_file(tensors, str(folder / STATE_TENSORS_FILE))
        (folder / STATE_META_FILE).write_text(json.dumps(skeleton))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


#: Checkpoints shipped with the package, addressed as ``pretrained:<name>``.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
PRETRAINED_PREFIX = "pretrained:"


def available_pretrained() -> list[str]:
    """Names usable as ``pretrained:<name>``."""
    return (
        sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_FILE).exists())
        if PRETRAINED_DIR.is_dir()
        else []
    )


#: Where a run folder of the layout before ``checkpoints/`` kept its last and best checkpoints.
LEGACY_RUN_LAYOUT = {"last": "checkpoint", "best": "best"}


def resolve_checkpoint(path: str | Path, default: str = LAST) -> Path:
    """A checkpoint directory; ``pretrained:<name>`` means the one shipped in ``generators/pretrained``.

    A training run's folder, its ``checkpoints/`` folder or its ``checkpoints/last`` pointer
    mean the step folder ``last`` names (``default="best"``: ``checkpoints/best``); a run folder
    of the older layout means its ``checkpoint/`` (or ``best/``). A checkpoint directory itself
    (step folder, ``checkpoints/best``, an older ``<out>/checkpoint``) is used as it is; see
    :mod:`sim2real_env.checkpoints`.
    """
    text = str(path)
    if not text.startswith(PRETRAINED_PREFIX):
        return resolve_run_path(path, marker=CONFIG_FILE, default=default, legacy=LEGACY_RUN_LAYOUT)
    name = text[len(PRETRAINED_PREFIX) :]
    if name not in available_pretrained():
        raise CheckpointError(unknown_name_message("pretrained checkpoint", name, available_pretrained()))
    return PRETRAINED_DIR / name


def checkpoint_id(path: str | Path) -> str:
    """Short stable id of a checkpoint's weights: ``<method>-<sha256 of weights[:12]>``."""
    path = resolve_checkpoint(path)
    method = read_config(path)["method"]  # a missing or foreign folder is a CheckpointError naming it
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"checkpoint {path} has no {WEIGHTS_FILE}")
    return f"{method}-{hashlib.sha256(weights.read_bytes()).hexdigest()[:12]}"


# -- load ---------------------------------------------------------------------------------------
def read_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked for the keys every checkpoint must have.

    A checkpoint that a crash left as ``.<name>.old`` (between the two renames of a write) is
    put back under its name first, so ``--resume`` and loading find it.
    """
    path = resolve_checkpoint(path)
    recover_directory(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist (expected a directory with {CONFIG_FILE})")
    config_path = path / CONFIG_FILE
    if not config_path.exists():
        raise CheckpointError(f"checkpoint {path} has no {CONFIG_FILE}; is it a generator checkpoint?")
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {config_path} is corrupt (not valid JSON: {exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {config_path} must hold a JSON object, got {type(config).__name__}")
    missing = [k for k in ("kind", "format_version", "method", "direction", "model") if k not in config]
    if missing:
        raise CheckpointError(f"checkpoint {config_path} lacks required keys {missing}")
    if config["kind"] != "generator":
        raise CheckpointError(f"checkpoint {path} holds a {config['kind']!r}, not a generator")
    if config["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {config['format_version']}, this code reads {FORMAT_VERSION}"
        )
    return config


def load_generator(
    path: str | Path,
    *,
    method: str | None = None,
    direction: str | None = None,
    image_size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
) -> Any:
    """Rebuild a generator from its checkpoint directory (no architecture flags needed).

    ``method``, ``direction`` and ``image_size``, when given, must match the checkpoint.

    Example::

        generator = load_generator("runs/cyclegan")   # its checkpoints/last; or "pretrained:cyclegan"
        fake_real = generator.translate(sim_frames)  # (N, H, W, 3) uint8
    """
    path = resolve_checkpoint(path)
    config = read_config(path)
    if config["method"] not in METHODS:
        raise CheckpointError(
            f"checkpoint {path}: " + unknown_name_message("generator method", config["method"], METHODS)
        )
    if method is not None and config["method"] != method:
        raise CheckpointError(f"checkpoint {path} is a {config['method']!r} generator, expected {method!r}")
    if direction is not None and config["direction"] != direction:
        raise CheckpointError(f"checkpoint {path} translates {config['direction']!r}, expected {direction!r}")
    if image_size is not None and tuple(config.get("image_size", ())) != tuple(image_size):
        raise CheckpointError(
            f"checkpoint {path} was trained at image size {config.get('image_size')}, expected {list(image_size)}"
        )
    cls = method_class(config["method"])
    try:
        model_config = cls.config_class.from_dict(config["model"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: model config does not fit {config['method']}: {exc}") from exc
    generator = cls(model_config, direction=config["direction"])
    size = getattr(model_config, "image_size", None)
    if size is not None and "image_size" in config and list(config["image_size"]) != list(size):
        raise CheckpointError(
            f"checkpoint {path}: config.json says image_size {list(config['image_size'])}, "
            f"its model config {list(size)}; the file was edited or mixed up"
        )
    weights_path = path / WEIGHTS_FILE
    if not weights_path.exists():
        raise CheckpointError(f"checkpoint {path} has no {WEIGHTS_FILE}")
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {weights_path} is corrupt ({exc})") from exc
    expected = generator.state_dict()
    for name, tensor in weights.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            raise CheckpointError(
                f"checkpoint {weights_path}: tensor {name!r} is {tensor.dtype}, the model holds {expected[name].dtype}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint {weights_path}: tensor {name!r} holds NaN or infinite values")
    try:
        generator.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {weights_path} does not match its config.json: {exc}") from exc
    generator.checkpoint_id = checkpoint_id(path)
    return generator.to(device).eval()


def load_training_state(path: str | Path) -> dict[str, Any]:
    """The resumable training state saved beside a checkpoint's weights."""
    path = resolve_checkpoint(path)
    tensors_path, meta_path = path / STATE_TENSORS_FILE, path / STATE_META_FILE
    if not tensors_path.exists() or not meta_path.exists():
        raise CheckpointError(f"checkpoint {path} holds no training state; it cannot be resumed from")
    try:
        tensors = load_file(str(tensors_path))
        skeleton = json.loads(meta_path.read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"training state in {path} is corrupt ({exc})") from exc
    state = unflatten_state(skeleton, tensors)
    if not isinstance(state, dict):
        raise CheckpointError(f"training state in {path} is not a mapping")
    return state
