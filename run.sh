#!/usr/bin/env bash
# Command 1: set everything up (idempotent) and run the main job on defaults.
# Today's main job: harvest a small paired dataset with the expert and drive the expert on
# small_loop, writing a video and a summary. Outputs go to runs/quickstart/ (or $1).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
out="${1:-runs/quickstart}"
.venv/bin/sim2real harvest --out "$out/dataset" --maps small_loop,loop_empty --episodes 1 --steps 300 --every 5
.venv/bin/sim2real drive --out "$out/drive" --map small_loop --steps 600
echo
echo "Main job done:"
echo "  dataset (canonical | randomized | segmentation frames + manifest.csv): $out/dataset"
echo "  expert drive video and summary: $out/drive"
