"""Probe: do simulator frames rendered through the Duckiebot's fisheye lens look more like real ones.

The real frames are fisheye and not rectified; the simulator renders a pinhole camera. This drives
the expert on the four harvest maps (seeds 1000-1003, every 5th of 400 steps, 320 frames), renders
the pinhole camera at ``--fov`` degrees (wide enough to cover the fisheye's rays), warps each frame
through the calibrated lens (``sim2real_env._compat.fisheye_maps``, the calibration of
``gym_duckietown.distortion``), and prints KID to the real ``val`` split in both feature spaces,
for the raw frames and for the shipped colour transfer, pinhole and fisheye.

    python -m benchmarks.fisheye_probe --fov 110
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from agents.expert import PurePursuitExpert
from generators.data import FolderSpec, default_real_dir, load_images
from generators.image_metrics import load_sim_to_real
from generators.realism import Features, kernel_distance
from sim2real_env import _compat
from sim2real_env.env import EnvConfig
from sim2real_env.frames import translate_in_batches
from sim2real_env.make import build_env
from sim2real_env.rollout import rollout

MAPS = ("small_loop", "loop_empty", "zigzag_dists", "udem1")


def expert_frames(fov: float) -> np.ndarray:
    """Every 5th frame of a 400-step expert drive per map, pinhole camera at ``fov`` degrees."""
    frames: list[np.ndarray] = []
    for index, map_name in enumerate(MAPS):
        env = build_env(EnvConfig(map_name=map_name, episode_length=401, camera_fov_y_deg=fov))
        expert = PurePursuitExpert()
        drive: list[np.ndarray] = []
        rollout(
            env,
            lambda obs, env=env, expert=expert: expert.act(env),  # type: ignore[misc]
            seed=1000 + index,
            max_steps=400,
            on_step=lambda step, drive=drive: drive.append(step.next_obs),  # type: ignore[misc]
        )
        env.close()
        frames += drive[4::5]
    return np.stack(frames)


def main() -> None:
    """Print the four rows (pinhole/fisheye x raw/colour transfer)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fov", type=float, default=110.0, help="vertical field of view of the pinhole render")
    args = parser.parse_args()
    torch.set_num_threads(1)
    _compat.load_simulator()
    from gym_duckietown.distortion import Distortion

    lens = Distortion()
    real = load_images(FolderSpec(str(default_real_dir()), split="val"), (120, 160)).images.numpy()
    features = {space: Features(space) for space in ("lite2", "lite0")}
    reference = {(s, r): f(real, region=r) for s, f in features.items() for r in ("full", "road")}
    color_transfer = load_sim_to_real("pretrained:color_transfer")
    pinhole = expert_frames(args.fov)
    focal = 60.0 / np.tan(np.radians(args.fov) / 2)  # pixels at 120 rows
    k_pinhole = np.array([[focal * 4, 0, 79.5 * 4], [0, focal * 4, 59.5 * 4], [0, 0, 1.0]])  # at 640x480
    map_x, map_y = _compat.fisheye_maps(lens.camera_matrix, k_pinhole, lens.distortion_coefs, 120, 160)
    fisheye = np.stack([cv2.remap(f, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for f in pinhole])
    for name, frames in (
        ("pinhole identity", pinhole),
        ("pinhole color_transfer", translate_in_batches(color_transfer, pinhole)),
        ("fisheye identity", fisheye),
        ("fisheye color_transfer", translate_in_batches(color_transfer, fisheye)),
    ):
        kids = {
            k: kernel_distance(features[k[0]](frames, region=k[1]), v, subsets=50, seed=0)[0]
            for k, v in reference.items()
        }
        print(
            f"fov {args.fov:.0f} {name}: " + " ".join(f"{s}_{r}={kid:.1f}" for (s, r), kid in kids.items()), flush=True
        )


if __name__ == "__main__":
    main()
