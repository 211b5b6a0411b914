"""Evaluation: metric functions on hand-made cases, domains, configs, the harness end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.bc import BCConfig, train_bc
from agents.evaluate import bootstrap_ci, evaluate, improvement, load_eval_config
from agents.pipeline import Pipeline, PipelineMismatchError
from generators.image_metrics import (
    color_threshold_scores,
    detect_colors,
    domain_classifier_accuracy,
    frechet_distance,
    kernel_distance,
    mask_scores,
    temporal_change,
)
from sim2real_env.domains import Domain, apply_image_ops, load_domain
from sim2real_env.segmentation import SegClass

# -- metric functions ------------------------------------------------------------------------


def test_mask_scores_known_answer() -> None:
    truth = np.zeros((1, 4, 4), dtype=bool)
    truth[0, :2] = True  # 8 pixels
    predicted = np.zeros_like(truth)
    predicted[0, 1:3] = True  # 8 pixels, 4 overlap
    scores = mask_scores(predicted, truth)
    assert scores["iou"] == pytest.approx(4 / 12)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(0.5)
    assert math.isnan(mask_scores(np.zeros_like(truth), np.zeros_like(truth))["iou"])


def test_robot_thresholds_find_painted_markings() -> None:
    frame = np.full((120, 160, 3), 60, dtype=np.uint8)  # dark grey road
    frame[60:80, :40] = (255, 255, 255)  # white
    frame[60:80, 60:100] = (230, 200, 20)  # yellow (RGB)
    frame[100:120, 120:] = (220, 20, 20)  # red
    classes = np.full((120, 160), SegClass.ROAD, dtype=np.uint8)
    classes[60:80, :40] = SegClass.WHITE_LINE
    classes[60:80, 60:100] = SegClass.YELLOW_LINE
    classes[100:120, 120:] = SegClass.RED_LINE
    masks = detect_colors(frame[None])
    assert masks["white"].shape == (1, 80, 160)  # 120x160 with the top 40 rows cut
    scores = color_threshold_scores(frame[None], classes[None])
    for color in ("white", "yellow", "red", "markings"):
        assert scores[color]["iou"] == pytest.approx(1.0), color
    above = frame.copy()
    above[:40] = 255  # markings above the cut-off are ignored
    assert color_threshold_scores(above[None], classes[None])["white"]["iou"] == pytest.approx(1.0)


def test_feature_distances_and_classifier_separate_shifted_sets() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    b = rng.normal(size=(200, 8))
    far = rng.normal(size=(200, 8)) + 3.0
    assert frechet_distance(a, b) < 0.5 < 9.0 < frechet_distance(a, far)
    assert abs(kernel_distance(a, b)[0]) < kernel_distance(a, far)[0]
    assert domain_classifier_accuracy(a, far) > 0.95
    assert 0.3 < domain_classifier_accuracy(a, b) < 0.7


def test_temporal_change_and_bootstrap() -> None:
    frames = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    frames[1] = 10
    assert temporal_change(frames) == pytest.approx(10.0)
    mean, low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0], resamples=500)
    assert mean == 2.5 and 1.0 <= low < 2.5 < high <= 4.0
    assert bootstrap_ci([5.0]) == (5.0, 5.0, 5.0)
    assert improvement(10.0, 4.0, 7.0) == pytest.approx(0.5)
    assert improvement(0.2, 0.6, 0.4, higher_is_better=False) == pytest.approx(0.5)
    assert math.isnan(improvement(4.0, 4.0, 5.0))


# -- domains ------------------------------------------------------------------------------------


def test_domain_configs_validate_and_image_ops_act() -> None:
    for name in ("canonical", "randomized", "real_proxy_camera", "real_proxy_image", "real_proxy_full"):
        assert load_domain(name).name == name
    with pytest.raises(ValueError, match="Did you mean 'real_proxy_image'"):
        load_domain("real_proxy_imag")
    with pytest.raises(ValueError, match="Did you mean 'blur'"):
        Domain("x", image=({"op": "blurr", "sigma": 1},))
    with pytest.raises(ValueError, match="Did you mean 'sigma'"):
        Domain("x", image=({"op": "blur", "sigm": 1},))
    with pytest.raises(ValueError, match="jpeg.quality must be a number in"):
        Domain("x", image=({"op": "jpeg", "quality": 0},))
    with pytest.raises(ValueError, match="Unknown EnvConfig key"):
        Domain("x", env={"camera_tilt": 3})
    frame = np.full((12, 16, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    warm = apply_image_ops(frame, ({"op": "color_temperature", "kelvin": 3000},), rng)
    assert warm[..., 0].mean() > warm[..., 2].mean()  # warm light: more red than blue
    dark = apply_image_ops(frame, ({"op": "exposure", "gain": 0.5},), rng)
    assert dark.mean() == pytest.approx(64, abs=1)
    noisy = apply_image_ops(frame, ({"op": "noise", "std": 10},), rng)
    assert 5 < noisy.astype(float).std() < 15 and noisy.dtype == np.uint8


# -- harness ------------------------------------------------------------------------------------


def test_eval_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("agents: [{name: e, expert: true}]\nepisodez: 3\n")
    with pytest.raises(ValueError, match="Did you mean 'episodes'"):
        load_eval_config(path)
    path.write_text("agents: [{name: e, expert: true}]\ndomains: [canonical, randomised]\n")
    with pytest.raises(ValueError, match="Did you mean 'randomized'"):
        load_eval_config(path)
    path.write_text("agents: [{name: e, expert: true, canonicalize: x}]\n")
    with pytest.raises(ValueError, match="takes no wrapper"):
        load_eval_config(path)
    path.write_text("agents: [{name: e, pth: x}]\n")
    with pytest.raises(ValueError, match="Did you mean 'path'"):
        load_eval_config(path)
    path.write_text("agents: [{name: e, expert: true}]\nprimary: distance\n")
    with pytest.raises(ValueError, match="primary measure"):
        load_eval_config(path)


@pytest.mark.sim
def test_harness_end_to_end_on_the_real_simulator(tmp_path: Path) -> None:
    env = {"map_name": "small_loop", "camera_width": 80, "camera_height": 60, "action_space": "speed_steer"}
    pipeline = Pipeline.build("raw", env=env, preprocess={"crop_top": 20, "resize": [20, 40], "frame_stack": 1})
    bc = {
        "demo_episodes": 1,
        "episode_actions": 20,
        "dagger_rounds": 0,
        "val_episodes": 1,
        "epochs": 1,
        "eval_episodes": 0,
        "torch_threads": 1,
        "net": {"width": 4, "hidden": 8},
    }
    train_bc(pipeline, BCConfig.from_dict(bc), tmp_path / "bc", progress=False)
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"name: tiny\nout: {tmp_path / 'report'}\nepisodes: 2\nepisode_frames: 15\nbootstrap: 200\n"
        "domains: [canonical, real_proxy_image]\n"
        f"agents:\n  - {{name: bc, path: {tmp_path / 'bc'}}}\n  - {{name: expert, expert: true}}\n"
    )
    # The raw agent in an image-changed domain is a transfer condition: refused unless allowed.
    with pytest.raises(PipelineMismatchError, match="allow_pipeline_mismatch"):
        evaluate(load_eval_config(config, ["domains=[canonical, randomized]"]), progress=False)
    results = evaluate(load_eval_config(config), progress=False)
    report = tmp_path / "report"
    for name in ("report.md", "results.json", "bars.png", "matrix.png", "views.png"):
        assert (report / name).stat().st_size > 0, name
    saved = json.loads((report / "results.json").read_text())
    assert saved["summary"]["bc"]["canonical"]["distance_m"][0] == pytest.approx(
        np.mean([e["distance_m"] for e in saved["episodes"]["bc"]["canonical"]])
    )
    seeds = [[e["seed"] for e in saved["episodes"][a][d]] for a in ("bc", "expert") for d in ("canonical",)]
    assert seeds[0] == seeds[1] == [1_000_000, 1_000_001]  # the same seeds for every agent, none used in training
    assert results["summary"]["expert"]["canonical"]["distance_m"][0] > 0.02  # the expert drives
    assert "Transfer report: tiny" in (report / "report.md").read_text()
    from sim2real_env.cli import main

    assert main(["evaluate", "--config", str(config), "--rerender"]) == 0
    assert "re-rendered from the stored episodes" in (report / "report.md").read_text()
    assert json.loads((report / "results.json").read_text())["summary"] == saved["summary"]
    image = cv2.imread(str(report / "views.png"))
    assert image is not None and image.shape[0] > 50


@pytest.mark.sim
def test_image_metrics_command_on_a_real_harvest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from generators.checkpoint import save_generator
    from generators.cyclegan.model import CycleGAN, CycleGANConfig
    from sim2real_env.cli import main
    from tests.test_generators import write_images

    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.from_dict({"image_size": [60, 80], "width": 4, "blocks": 1}), "sim->real")
    checkpoint = save_generator(model, tmp_path / "gen")
    harvest = ["harvest", "--out", str(tmp_path / "h"), "--maps", "small_loop", "--episodes", "1"]
    assert main([*harvest, "--steps", "48", "--every", "2", "--quiet"]) == 0
    write_images(tmp_path / "real", 30, seed=1, tint=(120, 90, 60))
    args = ["image-metrics", "--checkpoint", f"tiny={checkpoint}", "--checkpoint", "proxy=domain:real_proxy_image"]
    args += ["--harvest", str(tmp_path / "h"), "--real-split"]
    real = ["all", "--real-dir", str(tmp_path / "real")]
    assert main([*args, *real, "--out", str(tmp_path / "m"), "--drive-steps", "10"]) == 0
    metrics = json.loads((tmp_path / "m" / "image_metrics.json").read_text())
    assert metrics["frames"] == {"sim": 24, "real": 30, "drive": 11}
    # Every table has the two baselines next to the learned method, in this order.
    assert list(metrics["methods"]) == ["identity", "color_transfer", "tiny", "proxy"]
    identity, tiny = metrics["methods"]["identity"], metrics["methods"]["tiny"]
    # The real-proxy camera's row: its image operations (warm, dim, blurred, noisy) change the frames.
    proxy = metrics["methods"]["proxy"]
    assert proxy["checkpoint"] == "domain:real_proxy_image" and proxy["temporal"]["ratio"] != pytest.approx(1.0)
    assert proxy["colour_cast"]["road"]["lightness"] < identity["colour_cast"]["road"]["lightness"]  # exposure 0.75
    # The identity row is the raw simulator: the robot's thresholds find most of its own white line,
    # exactly as on the untranslated frames, and it does not flicker more than the simulator.
    assert identity["color_thresholds"] == metrics["color_thresholds"]["sim"]
    assert identity["color_thresholds"]["white"]["recall"] > 0.5
    assert identity["temporal"]["ratio"] == pytest.approx(1.0)
    for space in ("lite0_full", "lite0_road", "lite2_full", "lite2_road"):
        assert identity["realism"][space]["kid_std"] > 0
    # The untrained CycleGAN changes the frames: its distances differ from the raw simulator's.
    assert tiny["realism"]["lite2_full"]["kid"] != identity["realism"]["lite2_full"]["kid"]
    assert (tmp_path / "m" / "image_metrics_samples.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "image-metrics: wrote" in out and "| color_transfer |" in out
    assert "| method | Delta E top | Delta E road |" in out and "HSV red precision" in out
    # The real frames here are tinted warm: the raw simulator's cast is measured against their colour.
    assert identity["colour_cast"]["road"]["delta_e"] > 1.0 and tiny["colour_cast"]["top"]["contrast_ratio"] > 0
    assert main([*args, "all", "--real-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "m2")]) == 2


def test_model_card_and_pretrained_names(tmp_path: Path) -> None:
    import torch

    from generators.checkpoint import CheckpointError, load_generator, save_generator
    from generators.cyclegan.model import CycleGAN, CycleGANConfig
    from sim2real_env.cli import main

    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.from_dict({"image_size": [16, 20], "width": 4, "blocks": 1}), "sim->real")
    checkpoint = save_generator(model, tmp_path / "gen", step=7)
    (tmp_path / "m.json").write_text('{"psnr": 21.5}')
    args = ["model-card", "--checkpoint", str(checkpoint), "--metrics", str(tmp_path / "m.json")]
    assert main([*args, "--limitation", "blurry"]) == 0
    card = (checkpoint / "MODEL_CARD.md").read_text()
    assert "cyclegan (sim->real)" in card and "7 training steps" in card and '"psnr": 21.5' in card
    assert "blurry" in card and "research and educational use" in card
    assert main(["model-card", "--checkpoint", str(checkpoint), "--run", str(tmp_path / "none.json")]) == 2
    with pytest.raises(CheckpointError, match="Unknown pretrained checkpoint 'nope'"):
        load_generator("pretrained:nope")
    from generators.checkpoint import checkpoint_id

    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint_id(tmp_path / "missing")


def test_pretrained_checkpoints_load_and_translate() -> None:
    from generators import load_generator
    from generators.checkpoint import available_pretrained

    assert {"cyclegan", "unit", "stn_unet"} <= set(available_pretrained())
    frames = np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    for name, direction in (("cyclegan", "sim->real"), ("unit", "sim->real"), ("stn_unet", "real->canonical")):
        generator = load_generator(f"pretrained:{name}", direction=direction)
        small = cv2.resize(frames[0], generator.image_size[::-1], interpolation=cv2.INTER_AREA)[None]
        out = generator.translate(small)
        assert out.shape == small.shape and out.dtype == np.uint8 and out.std() > 0
        assert (Path("generators/pretrained") / name / "MODEL_CARD.md").exists()


@pytest.mark.sim
def test_one_line_make_env_with_the_pretrained_generators() -> None:
    from sim2real_env.make import make_env

    for name in ("cyclegan", "unit"):
        env = make_env(f"configs/envs/sim2real_{name}.yaml")
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape == (60, 80, 3) and obs.dtype == np.uint8
        assert env.spec is not None and f"{name}-" in str(env.spec)
        env.close()


def test_colour_cast_measures_lightness_and_hue_shifts() -> None:
    """Delta E of region means: 0 against itself, the lightness step for a grey made brighter."""
    from generators.image_metrics import colour_cast, colour_moments

    rng = np.random.default_rng(0)
    grey = rng.integers(60, 90, (4, 120, 16, 1), dtype=np.uint8).repeat(3, axis=3)
    same = colour_cast(colour_moments(grey), colour_moments(grey))
    assert same["top"]["delta_e"] == pytest.approx(0.0) and same["road"]["contrast_ratio"] == pytest.approx(1.0)
    brighter = colour_moments(grey + np.uint8(40))
    step = brighter["road"]["mean"][0] - colour_moments(grey)["road"]["mean"][0]
    assert step > 10 and colour_cast(brighter, colour_moments(grey))["road"]["delta_e"] == pytest.approx(step, rel=0.02)
    blue = grey.copy()
    blue[..., 2] = np.minimum(grey[..., 2].astype(int) + 50, 255).astype(np.uint8)
    cast = colour_cast(colour_moments(blue), colour_moments(grey))["road"]
    assert cast["delta_e"] > 15 and abs(cast["lightness"] - colour_moments(grey)["road"]["mean"][0]) < 10
    # A 60x80 harvest is measured on the same rows, resized to 120x160 first.
    half = grey[:, ::2, ::2]
    assert colour_moments(half)["road"]["mean"] == pytest.approx(colour_moments(grey)["road"]["mean"], abs=1.0)
    with pytest.raises(ValueError, match="colour_moments needs"):
        colour_moments(np.zeros((2, 60, 80), np.uint8))
