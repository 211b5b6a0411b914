#!/usr/bin/env bash
# Command 1: set everything up (idempotent) and run the main job on defaults (1.6 min on this 2-core machine, ~4 on a slower one).
#   ./run.sh [OUT]          the main job, outputs in OUT (default runs/quickstart)
#   ./run.sh --long [OUT]   first re-train the shipped checkpoints from their recipes (hours), then the main job
#   SIM2REAL_MAIN_JOB=tiny ./run.sh OUT   the same steps at toy sizes (~2 min; what CI runs)
# Main job: harvest a small paired dataset with the expert; write the side-by-side video of the shipped
# student translator (simulator | translated); train short behaviour-cloning agents on raw frames and on translated
# frames; evaluate both (and the expert) on the canonical simulator and an image real-proxy domain; write
# the transfer report with plots (and, when real frames are present, the generator's image metrics).
set -euo pipefail
cd "$(dirname "$0")"
long=0
if [[ "${1:-}" == "--long" ]]; then long=1; shift; fi
scripts/bootstrap.sh
out="${1:-runs/quickstart}"
sim2real=.venv/bin/sim2real
real_dir="${SIM2REAL_REAL_DATA:-../shared/data/duckietown_real}"
sim2real_ckpt="pretrained:student"

if [[ $long == 1 ]]; then
  # The recipes of the shipped checkpoints (see generators/pretrained/*/MODEL_CARD.md).
  $sim2real harvest --out "$out/long/dataset" --maps small_loop,loop_empty,zigzag_dists,udem1 --episodes 2 --steps 500 --every 5
  $sim2real train-generator --config configs/generators/cyclegan.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/cyclegan" training.steps=3000 training.decay_start=1500 training.torch_threads=1 \
    "model.image_size=[60, 80]"
  $sim2real train-generator --config configs/generators/unit.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/unit" training.steps=3000 training.decay_start=1500 training.torch_threads=1 \
    "model.image_size=[60, 80]"
  $sim2real train-generator --config configs/generators/stn_unet_paired.yaml --sim-dir "$out/long/dataset/canonical" \
    out="$out/long/stn_unet" losses.paired_root="$out/long/dataset" training.steps=14000 training.decay_start=7000 \
    training.torch_threads=1
  # The translation recipe of pretrained:color_transfer, pretrained:fastcut and pretrained:student (their model cards).
  $sim2real train-generator --config configs/generators/color_transfer.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/color_transfer"
  $sim2real train-segmenter --harvest "$out/long/dataset" --out "$out/long/segmenter" --threads 1
  $sim2real train-generator --config configs/generators/fastcut.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/fastcut" model.prior_checkpoint="$out/long/color_transfer/checkpoint" \
    losses.segmenter="$out/long/segmenter" --max-steps 500  # pretrained:fastcut is its best/ (step 250 of 455)
  $sim2real distill --teacher "$out/long/fastcut/best" --sim-dir "$out/long/dataset/canonical" --real-dir "$real_dir" \
    out="$out/long/student"
  sim2real_ckpt="$out/long/student/best"
fi

harvest_steps=300 video_steps=300 eval=() metric_frames=120 drive_steps=100
bc="bc.demo_episodes=4 bc.episode_actions=300 bc.dagger_rounds=1 bc.dagger_episodes=2 bc.val_episodes=1 bc.epochs=6 bc.eval_episodes=1"
if [[ "${SIM2REAL_MAIN_JOB:-}" == "tiny" ]]; then
  harvest_steps=60 video_steps=20 eval=(episodes=1 episode_frames=20 bootstrap=100) metric_frames=12 drive_steps=5
  bc="bc.demo_episodes=1 bc.episode_actions=20 bc.dagger_rounds=1 bc.dagger_episodes=1 bc.val_episodes=1 bc.epochs=1 bc.eval_episodes=1"
fi
$sim2real harvest --out "$out/dataset" --maps small_loop,loop_empty --episodes 1 --steps "$harvest_steps" --every 5
$sim2real video --checkpoint "$sim2real_ckpt" --map small_loop --steps "$video_steps" --out "$out/video/side_by_side.mp4"
# shellcheck disable=SC2086
$sim2real train-agent --algo bc --pipeline raw --config configs/agents/bc.yaml --out "$out/agents/bc_raw" $bc
# shellcheck disable=SC2086
$sim2real train-agent --algo bc --pipeline sim2real --config configs/agents/bc.yaml --checkpoint "$sim2real_ckpt" \
  --out "$out/agents/bc_sim2real" $bc
agents="agents=[{name: bc_raw, path: $out/agents/bc_raw/agent}, {name: bc_sim2real, path: $out/agents/bc_sim2real/agent}, {name: expert, expert: true}]"
metrics=()
if [[ -d $real_dir ]]; then
  metrics=("image_metrics={checkpoint: \"$sim2real_ckpt\", harvest: $out/dataset, real_dir: $real_dir, max_frames: $metric_frames, drive_steps: $drive_steps}")
else
  echo "run.sh: no real frames at $real_dir: the report skips the generator's image metrics." >&2
  echo "run.sh: set SIM2REAL_REAL_DATA=/path/to/real/frames to include them." >&2
fi
$sim2real evaluate --config configs/eval/quickstart.yaml "out=$out/report" "$agents" "${eval[@]}" "${metrics[@]}"

echo
echo "Main job done:"
echo "  paired dataset (canonical | randomized | segmentation + manifest.csv): $out/dataset"
echo "  side-by-side video (simulator | translated by $sim2real_ckpt): $out/video/side_by_side.mp4"
echo "  agents (agent.json + weights, bc_curve.png, TensorBoard): $out/agents/bc_raw, $out/agents/bc_sim2real"
echo "  transfer report (report.md, results.json, bars.png, matrix.png, views.png): $out/report"
