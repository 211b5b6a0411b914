"""Observation wrappers: fake-env unit tests and real-simulator tests (single, vector, SB3 PPO)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from generators.checkpoint import save_generator
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from sim2real_env.make import EnvBuild, make_env
from sim2real_env.preprocess import ChannelFrameStack, CropObservation, ResizeObservation
from sim2real_env.vector import Sim2RealVecEnv, Sim2RealVectorObservation
from sim2real_env.wrappers import CanonicalizeObservation, Sim2RealObservation


class FakeImageEnv(gym.Env[np.ndarray, np.ndarray]):
    """Deterministic frames that change each step; for pure wrapper tests."""

    def __init__(self, shape: tuple[int, ...] = (24, 32, 3), dtype: Any = np.uint8) -> None:
        self.observation_space = spaces.Box(0, 255, shape, dtype=dtype)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.t = 0

    def _obs(self) -> np.ndarray:
        rng = np.random.default_rng(self.t)
        return rng.integers(0, 256, self.observation_space.shape).astype(self.observation_space.dtype)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0 if seed is None else seed
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._obs(), 0.0, False, self.t % 5 == 0, {}


def generator(direction: str = "sim->real", size: tuple[int, int] = (16, 20)) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig(image_size=size, width=4, blocks=1), direction=direction).eval()


def test_space_dtype_and_recorded_arguments() -> None:
    env = Sim2RealObservation(FakeImageEnv(), generator(), keep_original=True)
    assert env.observation_space == spaces.Box(0, 255, (24, 32, 3), np.uint8)
    obs, info = env.reset(seed=1)
    assert obs.shape == (24, 32, 3) and obs.dtype == np.uint8
    assert info["untranslated_obs"].shape == (24, 32, 3)
    assert not np.array_equal(obs, info["untranslated_obs"])
    env.step(np.zeros(2))
    again, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs, again)  # deterministic
    assert env._saved_kwargs["generator_checkpoint"] == "unsaved"
    assert env._saved_kwargs["generator_method"] == "cyclegan"
    custom = Sim2RealObservation(FakeImageEnv(), generator(), output_size=(12, 16))
    assert custom.reset(seed=0)[0].shape == (12, 16, 3)


def test_invalid_input() -> None:
    with pytest.raises(TypeError, match="Sim2RealObservation needs uint8 observations"):
        Sim2RealObservation(FakeImageEnv(dtype=np.float32), generator())
    with pytest.raises(ValueError, match=r"Sim2RealObservation needs \(H, W, 3\) RGB observations"):
        Sim2RealObservation(FakeImageEnv(shape=(24, 32)), generator())
    with pytest.raises(TypeError, match="needs a Generator"):
        Sim2RealObservation(FakeImageEnv(), object())
    with pytest.raises(ValueError, match="needs a 'sim->real' generator, got a 'real->canonical'"):
        Sim2RealObservation(FakeImageEnv(), generator("real->canonical"))
    with pytest.raises(ValueError, match="CanonicalizeObservation needs a 'real->canonical' generator"):
        CanonicalizeObservation(FakeImageEnv(), generator())
    with pytest.raises(
        ValueError, match="resize=False but the env gives 24x32 frames and the generator was trained at 16x20"
    ):
        Sim2RealObservation(FakeImageEnv(), generator(), resize=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Sim2RealObservation(FakeImageEnv(), generator(), device="cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda"):
        Sim2RealObservation(FakeImageEnv(), generator(), device="tpu")


def test_preprocessing_wrappers() -> None:
    env = ChannelFrameStack(ResizeObservation(CropObservation(FakeImageEnv(), 8), (8, 16)), 3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8, 16, 9) and env.observation_space.shape == (8, 16, 9)
    np.testing.assert_array_equal(obs[..., :3], obs[..., 6:])
    obs, *_ = env.step(np.zeros(2))
    assert not np.array_equal(obs[..., :3], obs[..., 6:])
    with pytest.raises(ValueError, match="CropObservation: top must be"):
        CropObservation(FakeImageEnv(), 24)
    with pytest.raises(ValueError, match="ChannelFrameStack: k must be"):
        ChannelFrameStack(FakeImageEnv(), 0)


def test_gymnasium_vector_wrapper_equals_single_env_wrapper() -> None:
    gen = generator()
    vec = gym.vector.SyncVectorEnv([FakeImageEnv for _ in range(3)])
    wrapped = Sim2RealVectorObservation(vec, gen)
    singles = [Sim2RealObservation(FakeImageEnv(), gen) for _ in range(3)]
    batch, _ = wrapped.reset(seed=[1, 2, 3])
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(batch[i], env.reset(seed=i + 1)[0])
    batch, *_ = wrapped.step(np.zeros((3, 2), np.float32))
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(batch[i], env.step(np.zeros(2))[0])
    assert wrapped.single_observation_space.shape == (24, 32, 3)


def test_sb3_vec_wrapper_translates_terminal_observations() -> None:
    gen = generator()
    venv = Sim2RealVecEnv(DummyVecEnv([FakeImageEnv, FakeImageEnv]), gen)
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (2, 24, 32, 3) and obs.dtype == np.uint8
    for _ in range(5):
        obs, _, dones, infos = venv.step(np.zeros((2, 2), np.float32))
    assert dones[0]  # env 0 started at t=0 and truncates at t=5
    raw = FakeImageEnv()
    raw.reset(seed=0)
    for _ in range(5):
        final, *_ = raw.step(np.zeros(2))
    expected = Sim2RealObservation(FakeImageEnv(), gen).observation(final)
    np.testing.assert_array_equal(infos[0]["terminal_observation"], expected)


def test_make_env_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown make_env 'preprocess' key 'crop'. Did you mean 'crop_top'"):
        EnvBuild(preprocess={"crop": 4})
    with pytest.raises(ValueError, match="'translate' needs 'checkpoint'"):
        EnvBuild(translate={"device": "cpu"})
    with pytest.raises(ValueError, match="Unknown make_env 'translate' key 'backnd'. Did you mean 'backend'"):
        EnvBuild(translate={"checkpoint": "x", "backnd": "torch"})
    with pytest.raises(ValueError, match=r"preprocess.resize must be \[height, width\]"):
        EnvBuild(preprocess={"resize": [4]})
    with pytest.raises(ValueError, match="Unknown EnvConfig key 'mapname'"):
        EnvBuild(env={"mapname": "small_loop"})
    (tmp_path / "bad.yaml").write_text("envv: {}\n")
    with pytest.raises(ValueError, match="Did you mean 'env'"):
        EnvBuild.from_yaml(tmp_path / "bad.yaml")


# -- real simulator -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_generator(generator(size=(60, 80)), tmp_path_factory.mktemp("gen") / "cyclegan")


def _sim_factory(seed: int) -> gym.Env[Any, Any]:
    return gym.make("sim2real/Duckietown-v0", map_name="small_loop", camera_width=80, camera_height=60)


@pytest.mark.sim
def test_make_env_two_lines_on_real_simulator(tmp_path: Path, checkpoint: Path) -> None:
    config = tmp_path / "env.yaml"
    config.write_text(
        f"env: {{map_name: small_loop, camera_width: 160, camera_height: 120}}\n"
        f"translate: {{checkpoint: {checkpoint}, keep_original: true, backend: torch}}\n"
        "preprocess: {crop_top: 40, resize: [40, 80], frame_stack: 2}\n"
    )
    env = make_env(config)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (40, 80, 6) and obs.dtype == np.uint8
    obs, _, _, _, info = env.step(np.array([0.3, 0.3], np.float32))
    assert info["untranslated_obs"].shape == (120, 160, 3)
    spec_kwargs = [s.kwargs for s in env.spec.additional_wrappers] if env.spec else []  # type: ignore[union-attr]
    assert any(k.get("generator_checkpoint", "").startswith("cyclegan-") for k in spec_kwargs)
    assert [k["backend"] for k in spec_kwargs if "backend" in k] == ["torch"]  # passed on, not dropped
    env.close()


@pytest.mark.sim
@pytest.mark.slow
def test_subproc_batched_equals_single_and_ppo_trains(checkpoint: Path) -> None:
    from stable_baselines3 import PPO

    from generators.checkpoint import load_generator

    gen = load_generator(checkpoint)
    factories = [functools.partial(_sim_factory, seed=i) for i in range(2)]
    venv = Sim2RealVecEnv(SubprocVecEnv(factories, start_method="forkserver"), gen)
    venv.seed(3)
    batch = venv.reset()
    single = Sim2RealObservation(_sim_factory(0), gen)
    first, _ = single.reset(seed=3)
    np.testing.assert_array_equal(batch[0], first)
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", verbose=0)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    # It trained on the translated frames: every update changed the CNN and both heads, and the
    # losses it logged are finite.
    after = model.policy.state_dict()
    for prefix in ("features_extractor.", "action_net.", "value_net."):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"PPO updates left {prefix}* unchanged"
    logged = model.logger.name_to_value
    assert all(np.isfinite(logged[k]) for k in ("train/value_loss", "train/policy_gradient_loss"))
    venv.close()


@pytest.mark.sim
def test_video_command_writes_side_by_side(tmp_path: Path, checkpoint: Path) -> None:
    import imageio.v2 as imageio

    from sim2real_env.cli import main

    out = tmp_path / "sbs.mp4"  # (a GIF merges identical frames, so count on MP4)
    args = ["video", "--checkpoint", str(checkpoint), "--steps", "6", "--camera", "80x60", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    frames = imageio.mimread(out)
    assert len(frames) == 7 and frames[0].shape[:2] == (120, 320)
    assert main([*args, "--out", str(tmp_path / "x.avi")]) == 2
    # Two generators -> three panels; --stills writes the labelled picture beside the video.
    two = [*args, "--checkpoint", "pretrained:cyclegan", "--stills", "3", "--out", str(tmp_path / "two.mp4")]
    assert main(two) == 0
    frames = imageio.mimread(tmp_path / "two.mp4")
    assert frames[0].shape[:2] == (120, 480)
    _, first, second = np.split(np.asarray(frames[3], dtype=np.int16), 3, axis=1)
    assert np.abs(first - second).mean() > 2  # different generators, different panels
    still = cv2.imread(str(tmp_path / "two.png"))
    assert still.shape == (28 + 3 * 120, 480, 3)
    summary = json.loads((tmp_path / "two.json").read_text())
    assert summary["stills"] == str(tmp_path / "two.png") and len(summary["checkpoint_id"]) == 2
    assert main([*args, "--stills", "99", "--out", str(tmp_path / "s.mp4")]) == 2


def test_onnxruntime_backend_matches_torch() -> None:
    from generators.runtime import OnnxRuntimeGenerator, with_backend
    from generators.unit.model import UNIT, UNITConfig

    for model in (generator(size=(60, 80)), UNIT(UNITConfig(image_size=(16, 20), width=4, blocks=2)).eval()):
        fast = OnnxRuntimeGenerator(model)
        h, w = model.image_size
        frames = np.random.default_rng(0).integers(0, 256, (4, h, w, 3), dtype=np.uint8)
        a, b = model.translate(frames), fast.translate(frames)
        assert b.shape == a.shape and b.dtype == np.uint8
        assert np.abs(a.astype(int) - b).max() <= 1 and (a == b).mean() > 0.999
        floats = torch.rand(2, 3, h, w) * 2 - 1
        out = fast.translate(floats)
        assert isinstance(out, torch.Tensor) and torch.allclose(out, model.translate(floats), atol=1e-4)
        assert fast.checkpoint_id == model.checkpoint_id and fast.direction == model.direction
        assert fast.optimization == "all"  # the ResNet translators keep ORT's NCHWc layout rewrite
    assert with_backend(model, "torch") is model
    with pytest.raises(ValueError, match="Unknown generator backend 'onnx'. Did you mean 'onnxruntime'"):
        with_backend(model, "onnx")


def test_onnxruntime_uint8_graph_equals_float_graph_and_numpy_rounding() -> None:
    """The uint8 graph holds the numpy conversions bit for bit, and is built only for uint8 callers."""
    from generators.runtime import OnnxRuntimeGenerator
    from generators.student.model import Student, StudentConfig

    torch.manual_seed(0)
    student = Student(StudentConfig(image_size=(24, 32), pixel_bias=True, camera_blur=0.5))
    for module in student.modules():  # the last layers start at zero: give every branch something to do
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.4)
    with torch.no_grad():
        assert student.pixel_bias is not None
        student.pixel_bias.normal_(std=0.3)
    for model in (student.eval(), generator(size=(60, 80))):
        fast = OnnxRuntimeGenerator(model, threads=1)
        h, w = model.image_size
        frames = np.random.default_rng(1).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        floats = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        assert fast._uint8_session is None
        out = fast.translate(floats)  # float callers: the float graph only
        assert fast._uint8_session is None
        expected = np.rint((out.numpy() + 1.0) * 127.5).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        got = fast.translate(frames)
        assert got.dtype == np.uint8 and got.shape == frames.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(got, expected)
        assert fast._uint8_session is not None
        reference = model.translate(frames)  # torch, eager (avg_pool2d rather than the exported convolution)
        assert np.abs(reference.astype(int) - got).max() <= 1 and (reference == got).mean() > 0.999


def test_wrapper_backend_choice_and_errors() -> None:
    from generators.runtime import OnnxRuntimeGenerator

    default = Sim2RealObservation(FakeImageEnv(), generator())
    assert isinstance(default.generator, OnnxRuntimeGenerator) and default.backend == "onnxruntime"
    plain = Sim2RealObservation(FakeImageEnv(), generator(), backend="torch")
    assert isinstance(plain.generator, CycleGAN)
    a, b = default.reset(seed=2)[0], plain.reset(seed=2)[0]
    assert np.abs(a.astype(int) - b).max() <= 1
    with pytest.raises(ValueError, match="backend must be one of"):
        Sim2RealObservation(FakeImageEnv(), generator(), backend="tensorrt")


def test_preprocess_online_as_wrappers_equals_offline_on_stored_frames() -> None:
    from sim2real_env.preprocess import Preprocess

    pre = Preprocess(crop_top=4, resize=(10, 16), frame_stack=2)
    env = pre.wrap(FakeImageEnv())
    assert env.observation_space.shape == (10, 16, 6)
    stacked, _ = env.reset(seed=3)
    raw, _ = FakeImageEnv().reset(seed=3)
    np.testing.assert_array_equal(stacked[..., 3:], pre.frames(raw[None])[0])
    assert Preprocess.from_dict({"resize": [20, 40]}) == Preprocess(resize=(20, 40))
    with pytest.raises(ValueError, match="Unknown preprocess key 'stack'. Did you mean 'frame_stack'"):
        Preprocess.from_dict({"stack": 2})
