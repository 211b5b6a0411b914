#!/usr/bin/env bash
# Command 1: set everything up (idempotent) and run the main job on defaults (6.9 min on the 2-core development machine).
#   ./run.sh [OUT]          the main job, outputs in OUT (default runs/quickstart)
#   ./run.sh --long [OUT]   first re-train the shipped checkpoints from their recipes (hours), then the main job
#   SIM2REAL_MAIN_JOB=tiny ./run.sh OUT   the same steps at toy sizes (~2 min; what CI runs)
# Main job: harvest a small paired dataset with the expert; write the side-by-side video of the shipped
# student translator (simulator | translated); the small transfer benchmark (configs/benchmark/quickstart.yaml):
# behaviour-cloning agents on raw, colour-transferred and translated frames, two training seeds each, evaluated
# with the expert on two maps in the canonical simulator and an image real-proxy domain; its report opens with
# which pipeline is best per domain and how certain that is (and, with real frames, the generator's image metrics).
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
  # The translation recipe of pretrained:color_transfer(_8_bands), pretrained:fastcut and pretrained:student
  # (their model cards).
  $sim2real train-generator --config configs/generators/color_transfer.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/color_transfer"
  $sim2real train-generator --config configs/generators/color_transfer.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/color_transfer_8_bands" model.bands=8
  $sim2real train-segmenter --harvest "$out/long/dataset" --out "$out/long/segmenter" --threads 1
  $sim2real train-generator --config configs/generators/fastcut.yaml --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" out="$out/long/fastcut" model.prior_checkpoint="$out/long/color_transfer_8_bands/checkpoints/last" \
    losses.segmenter="$out/long/segmenter" --max-steps 1250  # pretrained:fastcut is its checkpoints/best (step 1000)
  # The student in six stages: distilled 1500 steps, fine-tuned against real frames too, then with the
  # marking loss's no-yellow-off-the-yellow-lines term (pretrained:student's model card).
  $sim2real distill --teacher "$out/long/fastcut/checkpoints/best" --sim-dir "$out/long/dataset/canonical" --real-dir "$real_dir" \
    --config configs/generators/student.yaml out="$out/long/student_distilled" --max-steps 1500
  $sim2real distill --teacher "$out/long/fastcut/checkpoints/best" --sim-dir "$out/long/dataset/canonical" --real-dir "$real_dir" \
    --config configs/generators/student_adversarial.yaml out="$out/long/student_adversarial" \
    training.init_from="$out/long/student_distilled/checkpoints/best" losses.segmenter="$out/long/segmenter"
  $sim2real distill --teacher "$out/long/fastcut/checkpoints/best" --sim-dir "$out/long/dataset/canonical" --real-dir "$real_dir" \
    --config configs/generators/student_adversarial.yaml out="$out/long/student" \
    training.init_from="$out/long/student_adversarial/checkpoints/best" losses.segmenter="$out/long/segmenter" \
    losses.marking_false_yellow=true training.steps=500 training.decay_start=250
  # Stage 4 (pretrained:student_stage4 is its step 500): camera blur, marking labels checked against the sim colours.
  $sim2real distill --teacher "$out/long/fastcut/checkpoints/best" --sim-dir "$out/long/dataset/canonical" --real-dir "$real_dir" \
    --config configs/generators/student_camera.yaml out="$out/long/student_camera" \
    training.init_from="$out/long/student/checkpoints/best" losses.segmenter="$out/long/segmenter"
  # Stage 5 (pretrained:student_red_edges): stage 4 fine-tuned against itself with no red beside the red lines.
  $sim2real distill --teacher "$out/long/student_camera/checkpoints/000000500" --sim-dir "$out/long/dataset/canonical" \
    --real-dir "$real_dir" --config configs/generators/student_red_edges.yaml out="$out/long/student_red_edges" \
    training.init_from="$out/long/student_camera/checkpoints/000000500" losses.segmenter="$out/long/segmenter"
  # Stage 6 (pretrained:student): 0.35 x stage 4 + 0.65 x stage 5 in weight space.
  $sim2real interpolate --start "$out/long/student_camera/checkpoints/000000500" \
    --end "$out/long/student_red_edges/checkpoints/000000200" --weight 0.65 --out "$out/long/student_blend"
  sim2real_ckpt="$out/long/student_blend"
fi

harvest_steps=300 video_steps=300 metric_frames=120 drive_steps=100 bench=()
if [[ "${SIM2REAL_MAIN_JOB:-}" == "tiny" ]]; then
  harvest_steps=60 video_steps=20 metric_frames=12 drive_steps=5
  bench=("evaluation.episodes=1" "evaluation.episode_frames=20" "bootstrap=200"
         "algos.bc.overrides=[bc.demo_episodes=1, bc.episode_actions=20, bc.dagger_rounds=0, bc.val_episodes=1, bc.epochs=1, bc.eval_episodes=0, bc.torch_threads=1]")
fi
$sim2real harvest --out "$out/dataset" --maps small_loop,loop_empty --episodes 1 --steps "$harvest_steps" --every 5
$sim2real video --checkpoint "$sim2real_ckpt" --map small_loop --steps "$video_steps" --out "$out/video/side_by_side.mp4"
metrics=()
if [[ -d $real_dir ]]; then
  metrics=("image_metrics={checkpoint: \"$sim2real_ckpt\", harvest: $out/dataset, real_dir: $real_dir, max_frames: $metric_frames, drive_steps: $drive_steps}")
else
  echo "run.sh: no real frames at $real_dir: the report skips the generator's image metrics." >&2
  echo "run.sh: set SIM2REAL_REAL_DATA=/path/to/real/frames to include them." >&2
fi
# BC agents on raw, colour-transferred and translated frames (2 training seeds each), evaluated on two
# maps in the canonical and the image real-proxy domain, compared with rliable; prints how certain it is.
pipelines="pipelines=[{name: raw, pipeline: raw}, {name: color_transfer, pipeline: sim2real, checkpoint: \"pretrained:color_transfer\"}, {name: sim2real, pipeline: sim2real, checkpoint: \"$sim2real_ckpt\"}]"
$sim2real transfer-benchmark --config configs/benchmark/quickstart.yaml "out=$out/report" "agents_dir=$out/agents" \
  "$pipelines" "${bench[@]}" "${metrics[@]}"

echo
echo "Main job done:"
echo "  paired dataset (canonical | randomized | segmentation + manifest.csv): $out/dataset"
echo "  side-by-side video (simulator | translated by $sim2real_ckpt): $out/video/side_by_side.mp4"
echo "  agents (checkpoints/last: agent.json + weights; bc_curve.png, TensorBoard): $out/agents/bc_{raw,color_transfer,sim2real}_s{0,1}"
echo "  transfer benchmark (report.md with the verdict and how certain it is, results.json, IQM and profile PNGs): $out/report"
echo "  evaluation matrix (per-agent means, every measure, what each agent sees): $out/report/matrix"
