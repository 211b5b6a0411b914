"""Evaluation domains: the canonical simulator, domain randomization, and "real-proxy" cameras.

A domain is a YAML file in ``configs/domains/`` (new domains need no code)::

    name: real_proxy_warm
    description: warm, dim, blurry camera mounted higher and steeper
    env: {distortion: true, camera_height_m: 0.12, camera_tilt_deg: 23}   # EnvConfig fields
    image:                                                               # applied in order
      - {op: color_temperature, kelvin: 4200}
      - {op: exposure, gain: 0.8}
      - {op: blur, sigma: 0.8}
      - {op: noise, std: 6}
      - {op: jpeg, quality: 40}

``env`` changes the simulator (``domain_rand: true`` swaps textures, lighting and colours;
``distortion: true`` is upstream's fisheye camera model; camera height, tilt and field of view
move the camera); ``image`` changes the rendered frame. Image operations and their parameters
live in ``IMAGE_OPS``; unknown names or parameters are errors with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message
from sim2real_env.wrappers import check_image_space
from sim2real_env.yaml_config import load_yaml_config, shipped_configs

DOMAINS_DIR = shipped_configs() / "domains"


def _kelvin_rgb(kelvin: float) -> np.ndarray:
    """Approximate RGB of a black body at ``kelvin`` (Tanner Helland's fit), in [0, 1]."""
    t = kelvin / 100.0
    red = 1.0 if t <= 66 else min(1.0, 1.292936186 * (t - 60) ** -0.1332047592)
    green = 0.39008157876 * math.log(t) - 0.63184144378 if t <= 66 else 1.129890861 * (t - 60) ** -0.0755148492
    blue = 1.0 if t >= 66 else (0.0 if t <= 19 else 0.54320678911 * math.log(t - 10) - 1.19625408914)
    return np.clip(np.array([red, green, blue]), 1e-3, 1.0)


def color_temperature(frame: np.ndarray, rng: np.random.Generator, kelvin: float) -> np.ndarray:
    """White balance as if lit at ``kelvin`` while the camera assumes 6500 K (low: warm/orange)."""
    gains = _kelvin_rgb(kelvin) / _kelvin_rgb(6500.0)
    gains = gains / gains.max()
    return np.clip(frame.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def exposure(frame: np.ndarray, rng: np.random.Generator, gain: float) -> np.ndarray:
    """Multiply intensities (sensor gain / exposure time), clipping highlights."""
    return np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def gamma(frame: np.ndarray, rng: np.random.Generator, value: float) -> np.ndarray:
    """Tone curve ``out = in ** value`` (on [0, 1])."""
    return (np.power(frame.astype(np.float32) / 255.0, value) * 255.0 + 0.5).astype(np.uint8)


def saturation(frame: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Scale colour saturation (0: grey)."""
    grey = frame.astype(np.float32).mean(axis=2, keepdims=True)
    return np.clip(grey + (frame.astype(np.float32) - grey) * scale, 0, 255).astype(np.uint8)


def blur(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian blur (defocus, motion) with standard deviation ``sigma`` pixels."""
    return cv2.GaussianBlur(frame, (0, 0), sigmaX=float(sigma))


def noise(frame: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Additive Gaussian sensor noise, ``std`` in 0-255 units, fresh every frame."""
    noisy = frame.astype(np.float32) + rng.normal(0.0, std, size=frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, rng: np.random.Generator, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (the robot streams compressed images)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("jpeg: OpenCV could not encode the frame")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("jpeg: OpenCV could not decode the frame")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=8)
def _fisheye_maps(height: int, width: int, k1: float) -> tuple[np.ndarray, np.ndarray]:
    """Remap grids of :func:`fisheye`; computed once per frame size and strength, not every frame."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy, f = (width - 1) / 2.0, (height - 1) / 2.0, max(width, height) / 2.0
    x, y = (xs - cx) / f, (ys - cy) / f
    factor = 1.0 + k1 * (x * x + y * y)
    return (x * factor * f + cx).astype(np.float32), (y * factor * f + cy).astype(np.float32)


def fisheye(frame: np.ndarray, rng: np.random.Generator, k1: float) -> np.ndarray:
    """Radial (barrel for ``k1 > 0``) lens distortion of the image, a change of intrinsics."""
    map_x, map_y = _fisheye_maps(frame.shape[0], frame.shape[1], float(k1))
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


#: op name -> (function, {parameter: (low, high)}).
IMAGE_OPS: dict[str, tuple[Callable[..., np.ndarray], dict[str, tuple[float, float]]]] = {
    "color_temperature": (color_temperature, {"kelvin": (1500.0, 15000.0)}),
    "exposure": (exposure, {"gain": (0.05, 10.0)}),
    "gamma": (gamma, {"value": (0.2, 5.0)}),
    "saturation": (saturation, {"scale": (0.0, 3.0)}),
    "blur": (blur, {"sigma": (0.1, 10.0)}),
    "noise": (noise, {"std": (0.0, 100.0)}),
    "jpeg": (jpeg, {"quality": (1, 100)}),
    "fisheye": (fisheye, {"k1": (-0.5, 1.0)}),
}


def check_image_op(spec: Any, where: str) -> dict[str, Any]:
    """Validate one ``{op: name, param: value}`` mapping."""
    if not isinstance(spec, dict) or "op" not in spec:
        raise ConfigError(f"{where}: each image step must be a mapping with 'op', got {spec!r}")
    name = str(spec["op"])
    if name not in IMAGE_OPS:
        raise ConfigError(f"{where}: " + unknown_name_message("image op", name, IMAGE_OPS))
    _, params = IMAGE_OPS[name]
    for key, value in spec.items():
        if key == "op":
            continue
        if key not in params:
            raise ConfigError(f"{where}: " + unknown_name_message(f"parameter of {name}", str(key), params))
        low, high = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{where}: {name}.{key} must be a number in [{low}, {high}], got {value!r}")
    missing = [p for p in params if p not in spec]
    if missing:
        raise ConfigError(f"{where}: {name} needs {missing}")
    return dict(spec)


def apply_image_ops(frame: np.ndarray, ops: tuple[dict[str, Any], ...], rng: np.random.Generator) -> np.ndarray:
    """Run ``ops`` on one uint8 HWC frame."""
    for spec in ops:
        function, _ = IMAGE_OPS[spec["op"]]
        frame = function(frame, rng, **{k: v for k, v in spec.items() if k != "op"})
    return frame


class DomainCamera:
    """A domain's image operations as a sim->real generator, for measuring (``image-metrics``' ``domain:<name>``).

    Why: the closed-loop real-proxy domains stand in for the real camera; their frames measured
    against real ones by the same judge as the translators say how much their closed-loop
    figures can tell about the real camera. Its noise is drawn afresh for every frame.
    """

    method = "domain"
    direction = "sim->real"
    normalization = "uint8"

    def __init__(self, name: str, image_size: tuple[int, int] = (120, 160), seed: int = 0) -> None:
        domain = load_domain(name)
        if not domain.image:
            raise ConfigError(f"domain {name!r} has no image operations (it changes the simulator): nothing to measure")
        self.ops = domain.image
        self.image_size = image_size
        self.checkpoint_id = f"domain:{domain.name}"
        self.rng = np.random.default_rng(seed)

    def translate(self, frames: Any) -> np.ndarray:
        """``(N, H, W, 3) uint8`` through the domain's image operations."""
        array = np.asarray(frames)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[3] != 3:
            raise ValueError(f"{self.checkpoint_id} takes (N, H, W, 3) uint8 frames, got {array.dtype} {array.shape}")
        return np.stack([apply_image_ops(frame, self.ops, self.rng) for frame in array])


class DomainImage(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Apply a domain's image operations to every frame (noise drawn from a per-reset seeded RNG)."""

    def __init__(self, env: gym.Env[np.ndarray, Any], ops: tuple[dict[str, Any], ...]) -> None:
        check_image_space(env.observation_space, "DomainImage")
        ops = tuple(check_image_op(op, "DomainImage") for op in ops)
        gym.utils.RecordConstructorArgs.__init__(self, ops=ops)
        gym.ObservationWrapper.__init__(self, env)
        self.ops = ops
        self.rng = np.random.default_rng(0)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset; ``seed`` also seeds the image noise so episodes repeat exactly."""
        if seed is not None:
            self.rng = np.random.default_rng(seed + 7919)
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The changed frame."""
        return apply_image_ops(observation, self.ops, self.rng)


#: Ranges that training-time augmentation draws parameters from (a subset of each op's valid
#: range in ``IMAGE_OPS``: wide enough to cover the shipped real-proxy domains' settings, narrow
#: enough that a lane marking stays visible). ``fisheye`` is left out: it moves pixels, a change of
#: camera, which the ``distortion`` env option models physically.
AUGMENT_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "color_temperature": {"kelvin": (3000.0, 10000.0)},
    "exposure": {"gain": (0.6, 1.4)},
    "gamma": {"value": (0.7, 1.4)},
    "saturation": {"scale": (0.5, 1.5)},
    "blur": {"sigma": (0.3, 1.5)},
    "noise": {"std": (0.0, 10.0)},
    "jpeg": {"quality": (25.0, 95.0)},
}


def draw_image_ops(rng: np.random.Generator, probability: float = 0.5) -> tuple[dict[str, Any], ...]:
    """A random chain from the op registry, in the registry's order (colour, blur, noise, JPEG).

    Each op of ``AUGMENT_RANGES`` is kept with ``probability``; parameters are uniform in range.
    """
    ops = []
    for name, params in AUGMENT_RANGES.items():
        if rng.random() >= probability:
            continue
        spec: dict[str, Any] = {"op": name}
        for key, (low, high) in params.items():
            value = float(rng.uniform(low, high))
            spec[key] = round(value) if name == "jpeg" else value
        ops.append(check_image_op(spec, "draw_image_ops"))
    return tuple(ops)


class RandomImageOps(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Training-time augmentation: a fresh random chain of domain image ops every episode.

    The augmentation baseline of the transfer benchmark (an agent that has seen many cameras
    instead of one translated look). Seeded resets draw the same chain and noise.
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], probability: float = 0.5) -> None:
        check_image_space(env.observation_space, "RandomImageOps")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
            raise ConfigError(f"RandomImageOps: probability must be a number in (0, 1], got {probability!r}")
        gym.utils.RecordConstructorArgs.__init__(self, probability=probability)
        gym.ObservationWrapper.__init__(self, env)
        self.probability = float(probability)
        self.rng = np.random.default_rng(0)
        self.ops: tuple[dict[str, Any], ...] = ()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and draw this episode's chain (``seed`` fixes chain and noise)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed + 104729)
        self.ops = draw_image_ops(self.rng, self.probability)
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The frame through this episode's chain."""
        return apply_image_ops(observation, self.ops, self.rng)


@dataclass(frozen=True)
class Domain:
    """One evaluation domain (see module docstring)."""

    name: str
    description: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    image: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("domain: 'name' must be a non-empty string")
        if not isinstance(self.env, dict):
            raise ConfigError(f"domain {self.name}: 'env' must be a mapping")
        EnvConfig.from_dict(self.env)
        if not isinstance(self.image, (tuple, list)):
            raise ConfigError(f"domain {self.name}: 'image' must be a list of {{op: ...}} steps")
        object.__setattr__(self, "image", tuple(check_image_op(op, f"domain {self.name}") for op in self.image))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Domain:
        """Read one ``configs/domains/*.yaml``; unknown keys are an error naming the key."""
        path = Path(path)
        raw = load_yaml_config(path, "domain file", [f.name for f in dataclasses.fields(cls)])
        raw.setdefault("name", path.stem)
        return cls(**raw)

    def env_config(self, **base: Any) -> EnvConfig:
        """The simulator config: ``base`` (the agent's camera, action space...) with this domain's changes.

        ``domain_rand`` and ``distortion`` are the domain's alone (off unless it sets them), so a
        column of the transfer matrix is the same condition for every agent.
        """
        return EnvConfig.from_dict({**base, "domain_rand": False, "distortion": False, **self.env})

    def make_env(self, **base: Any) -> gym.Env[np.ndarray, Any]:
        """The domain's camera-frame env (before any agent pipeline), from the one builder."""
        from sim2real_env.make import build_env

        return build_env(self.env_config(**base), image_ops=self.image)


def available_domains() -> list[str]:
    """Names of the domain files shipped in ``configs/domains/``."""
    return sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))


def load_domain(name_or_path: str | Path) -> Domain:
    """A domain by name (``configs/domains/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return Domain.from_yaml(path)
    candidate = DOMAINS_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        raise ConfigError(unknown_name_message("domain", str(name_or_path), available_domains()))
    return Domain.from_yaml(candidate)
