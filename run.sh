#!/usr/bin/env bash
# Command 1: set everything up (idempotent) and run the main job on defaults.
# Main job today: harvest a small paired dataset with the expert, drive the expert (video +
# summary), train a short sim->real CycleGAN on the harvested frames and the real Duckiebot
# frames, and write the side-by-side video (simulator | translated). Outputs: runs/quickstart/ (or $1).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
out="${1:-runs/quickstart}"
sim2real=.venv/bin/sim2real

$sim2real harvest --out "$out/dataset" --maps small_loop,loop_empty --episodes 1 --steps 300 --every 5
$sim2real drive --out "$out/drive" --map small_loop --steps 600

real_dir="${SIM2REAL_REAL_DATA:-../shared/data/duckietown_real}"
if [[ -d $real_dir ]]; then
  $sim2real train-generator --config configs/generators/cyclegan.yaml --sim-dir "$out/dataset/canonical" \
    --real-dir "$real_dir" out="$out/cyclegan" training.steps=300 training.decay_start=150 \
    training.sample_every=100 training.checkpoint_every=100
  $sim2real video --checkpoint "$out/cyclegan/checkpoint" --map small_loop --steps 300 --out "$out/video/side_by_side.mp4"
else
  echo "run.sh: no real frames at $real_dir: skipping generator training and the side-by-side video." >&2
  echo "run.sh: set SIM2REAL_REAL_DATA=/path/to/real/frames (a folder of JPEG/PNG camera frames) to include them." >&2
fi
echo
echo "Main job done:"
echo "  dataset (canonical | randomized | segmentation frames + manifest.csv): $out/dataset"
echo "  expert drive video and summary: $out/drive"
if [[ -d $real_dir ]]; then
  echo "  short CycleGAN run (checkpoint, samples/, tensorboard/): $out/cyclegan"
  echo "  side-by-side video (simulator | translated): $out/video/side_by_side.mp4"
fi
