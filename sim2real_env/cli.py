"""The ``sim2real`` command: one entry point, one subcommand per job.

Subcommands import their heavy modules lazily so ``sim2real --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim2real_env.errors import ConfigError, Sim2RealError

if TYPE_CHECKING:
    import numpy as np


def _camera(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"camera size must look like 160x120 (WIDTHxHEIGHT), got {text!r}") from None
    return width, height


def _cameras(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(_camera(c.strip()) for c in text.split(","))


def _at_least(option: str, low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``, or an error naming ``option`` and what it got."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= {low}, got {text!r}")
        return value

    return parse


_workers, _max_steps, _seed = _at_least("--workers", 1), _at_least("--max-steps", 1), _at_least("--seed", 0)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--crop must be a fraction in (0, 1], got {text!r}")
    return value


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_workers, default=1, help="episodes at once on Ray workers (1: serial, no Ray)")
    p.add_argument(
        "--ray-address", help="join a Ray cluster: 'auto' or HOST:PORT (default: $RAY_ADDRESS, else a local Ray)"
    )


def _stopped_exit(stopped: bool) -> int:
    """Exit status of a training command: 130 when a signal stopped it (saved, resumable), else 0."""
    from sim2real_env.signals import EXIT_SIGNALLED

    return EXIT_SIGNALLED if stopped else 0


def _cmd_harvest(args: argparse.Namespace) -> int:
    from agents.cluster import RayOptions
    from agents.harvest import HarvestConfig, harvest

    config = HarvestConfig(
        maps=tuple(m.strip() for m in args.maps.split(",") if m.strip()),
        episodes_per_map=args.episodes,
        steps_per_episode=args.steps,
        every=args.every,
        camera_width=args.camera[0],
        camera_height=args.camera[1],
        noise_std=args.noise,
        seed=args.seed,
        distortion=args.distortion,
    )
    summary = harvest(Path(args.out), config, progress=not args.quiet, ray=RayOptions(args.workers, args.ray_address))
    print(f"harvest: {summary['frames']} frames in {args.out} (manifest.csv)")
    return 0


def _cmd_drive(args: argparse.Namespace) -> int:
    from agents.drive import drive

    summary = drive(
        Path(args.out),
        map_name=args.map,
        steps=args.steps,
        seed=args.seed,
        camera=args.camera,
        video_format=args.format,
        wheel_noise_std=args.noise,
        progress=not args.quiet,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "provenance"}, indent=2))
    print(f"drive: video {summary['video']}, summary {Path(args.out) / 'summary.md'}")
    return 0


def _cmd_bench_env(args: argparse.Namespace) -> int:
    from benchmarks.env_speed import run

    paths = run(
        maps=[m.strip() for m in args.maps.split(",")],
        cameras=list(args.cameras),
        randomization=[{"off": False, "on": True}[r.strip()] for r in args.randomization.split(",")],
        steps=args.steps,
        repeats=args.repeats,
        out_dir=Path(args.out),
    )
    print(f"bench-env: wrote {', '.join(str(p) for p in paths)}")
    return 0


def _run_training(args: argparse.Namespace, extra: list[str]) -> tuple[Path, Path, int]:
    """Shared by train-generator and distill: config + flag overrides, train, (checkpoint, out, exit status)."""
    from generators.training import load_run_config, train

    overrides = [*extra, *args.overrides]
    if args.real_dir:
        overrides.append(f"data.real.root={args.real_dir}")
    if args.sim_dir:
        overrides.append(f"data.sim.root={args.sim_dir}")
    run = load_run_config(args.config, overrides)
    path = train(run, resume=args.resume, progress=not args.quiet, max_steps=args.max_steps)
    out = Path(run.out)
    stopped = json.loads((out / "run.json").read_text()).get("stopped_by_signal", False)
    return path, out, _stopped_exit(stopped)


def _cmd_train_generator(args: argparse.Namespace) -> int:
    path, out, status = _run_training(args, [])
    print(f"train-generator: checkpoint {path}; samples {out / 'samples'}; tensorboard {out / 'tensorboard'}")
    return status


def _cmd_distill(args: argparse.Namespace) -> int:
    path, out, status = _run_training(args, [f"losses.teacher={args.teacher}"])
    print(f"distill: student {path}; samples (sim | teacher | student) {out / 'samples'}; KID curve {out / 'kid.csv'}")
    return status


def _cmd_plot_kid(args: argparse.Namespace) -> int:
    from generators.realism import plot_runs, read_kid_log

    runs = {name: read_kid_log(path) for name, path in _named_checkpoints(args.run, "--run").items()}
    plot_runs(runs, Path(args.out), key=args.key)
    print(f"plot-kid: wrote {args.out} ({', '.join(runs)})")
    return 0


def _cmd_train_segmenter(args: argparse.Namespace) -> int:
    from generators.segmenter import SegmenterConfig, train_segmenter

    config = SegmenterConfig(
        width=args.width,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        torch_threads=args.threads,
        augment=args.augment,
    )
    summary = train_segmenter(args.harvest, args.out, config, val_harvest=args.val_harvest, progress=not args.quiet)
    scores = summary.get("val_iou_canonical")
    tail = f"; val IoU {', '.join(f'{k} {v:.3f}' for k, v in scores.items())}" if scores else ""
    print(f"train-segmenter: segmenter {args.out} ({summary['frames']} frames, {summary['wall_s']:.0f} s){tail}")
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from generators.interpolate import interpolate_checkpoints

    out = interpolate_checkpoints(args.start, args.end, args.weight, Path(args.out))
    print(f"interpolate: wrote {out} ({1 - args.weight:g} x {args.start} + {args.weight:g} x {args.end})")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    from generators.translate import translate_path

    written = translate_path(
        Path(args.checkpoint),
        Path(args.input),
        Path(args.output),
        side_by_side=args.side_by_side,
        batch_size=args.batch_size,
    )
    print(f"translate: wrote {written} frame(s) to {args.output}")
    return 0


def _cmd_stylize(args: argparse.Namespace) -> int:
    from generators.nst.optimize import stylize_folder

    count = stylize_folder(
        Path(args.style),
        Path(args.input),
        Path(args.output),
        size=(args.size[1], args.size[0]),
        steps=args.steps,
        backbone=args.backbone,
        vgg19_path=args.vgg19_path,
        progress=not args.quiet,
    )
    print(f"stylize: wrote {count} frame(s) to {args.output}")
    return 0


def _cmd_bench_generators(args: argparse.Namespace) -> int:
    from benchmarks.generator_speed import run

    cases = [c.strip() for c in args.cases.split(",")] if args.cases else None
    paths = run(Path(args.out), repeats=args.repeats, train_steps=args.train_steps, cases=cases, threads=args.threads)
    print(f"bench-generators: wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_video(args: argparse.Namespace) -> int:
    from agents.video import side_by_side_video

    summary = side_by_side_video(
        [Path(c) for c in args.checkpoint],
        Path(args.out),
        map_name=args.map,
        steps=args.steps,
        seed=args.seed,
        camera=args.camera,
        stills=args.stills,
        progress=not args.quiet,
    )
    print(f"video: {summary['frames']} frames ({summary['layout']}) in {summary['video']}")
    if "stills" in summary:
        print(f"video: {args.stills} labelled stills in {summary['stills']}")
    return 0


def _cmd_bench_wrapper(args: argparse.Namespace) -> int:
    from benchmarks.wrapper_speed import run

    paths = run(
        Path(args.out),
        map_name=args.map,
        cameras=args.cameras,
        env_counts=tuple(int(n) for n in args.envs.split(",")),
        kinds=tuple(k.strip() for k in args.kinds.split(",")),
        cases=tuple(c.strip() for c in args.generators.split(",")),
        steps=args.steps,
        repeats=args.repeats,
        ppo_steps=args.ppo_steps,
    )
    print(f"bench-wrapper: wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_eval_canonical(args: argparse.Namespace) -> int:
    from generators.stn_unet.metrics import evaluate

    report = evaluate(
        Path(args.checkpoint), Path(args.dataset), Path(args.out), crop=args.crop, seed=args.seed, split=args.split
    )
    for name, result in report["results"].items():
        print(f"eval-canonical {name}: {result}")
    print(f"eval-canonical: wrote {Path(args.out) / 'canonical_metrics.md'}")
    return 0


def _cmd_train_agent(args: argparse.Namespace) -> int:
    from agents.algorithms import ALGORITHMS
    from agents.config import load_agent_config

    config = load_agent_config(args.config, args.overrides)
    if config.algo != args.algo:
        raise ConfigError(f"--algo {args.algo} but {args.config} is a {config.algo!r} config")
    pipeline = config.pipeline(args.pipeline, checkpoint=args.checkpoint)
    out = Path(args.out) if args.out else config.out_dir(args.pipeline)
    algorithm = ALGORITHMS.lookup(config.algo)
    summary = algorithm.train(pipeline, config.algo_config(), out, resume=args.resume, progress=not args.quiet)
    for line in algorithm.report(pipeline.name, summary, out):
        print(line)
    return _stopped_exit(bool(summary.get("interrupted", False)))


def _cmd_transfer_benchmark(args: argparse.Namespace) -> int:
    from agents.benchmark import STAGES, headline_sentences, load_benchmark_config, run_benchmark
    from agents.cluster import RayOptions

    config = load_benchmark_config(args.config, args.overrides)
    stages = tuple(s.strip() for s in args.stages.split(",")) if args.stages else STAGES
    results = run_benchmark(
        config,
        config_path=str(args.config),
        stages=stages,
        ray=RayOptions(args.workers, args.ray_address),
        progress=not args.quiet,
    )
    out = config.out_dir()
    if "analysis" in results:
        for sentence in headline_sentences(config, results["analysis"]):
            print(f"transfer-benchmark: {sentence}")
        print(f"transfer-benchmark: report {out / 'report.md'}, results {out / 'results.json'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from agents.cluster import RayOptions
    from agents.evaluate import evaluate, load_eval_config

    config = load_eval_config(args.config, args.overrides)
    if args.rerender:
        from agents.evaluate import rerender

        results = rerender(config)
    else:
        results = evaluate(config, progress=not args.quiet, ray=RayOptions(args.workers, args.ray_address))
    out = config.out_dir()
    for agent, by_domain in results["summary"].items():
        cells = ", ".join(f"{d} {v[config.primary][0]:.2f}" for d, v in by_domain.items())
        print(f"evaluate {agent}: {config.primary} {cells}")
    print(f"evaluate: wrote {out / 'report.md'}, {out / 'results.json'} and plots (bars.png, matrix.png, views.png)")
    return 0


def _named_checkpoints(items: list[str], flag: str = "--checkpoint") -> dict[str, str]:
    """``NAME=PATH`` (or a bare path, named by its folder) -> ``{name: path}``; names must be unique."""
    from sim2real_env.checkpoints import run_label

    named: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            path = item
            name = run_label(path)  # a run's checkpoint is named by its run folder
        if not name or not path:
            raise ConfigError(f"{flag} {item!r} must be PATH or NAME=PATH")
        if name in named:
            raise ConfigError(f"{flag} name {name!r} is given twice; use NAME=PATH to tell them apart")
        named[name] = path
    return named


def _cmd_image_metrics(args: argparse.Namespace) -> int:
    from agents.drive import expert_drive_frames
    from generators.image_metrics import image_metrics, render_image_metrics
    from sim2real_env.harvest_folder import harvest_distortion
    from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic

    out = Path(args.out)
    camera: dict[str, bool] = {}

    def drive_frames(map_name: str, steps: int, seed: int) -> np.ndarray:
        # The harvest's camera: a fisheye harvest's translators see fisheye frames. Read here, after
        # image_metrics has checked the checkpoints and the harvest folder, and kept for the record.
        camera["distortion"] = harvest_distortion(args.harvest)
        return expert_drive_frames(map_name, steps, seed, distortion=camera["distortion"])

    from sim2real_env.domains import DomainCamera

    named: dict[str, object] = {
        name: DomainCamera(path.removeprefix("domain:")) if path.startswith("domain:") else path
        for name, path in _named_checkpoints(args.checkpoint).items()
    }
    metrics = image_metrics(
        named,
        args.harvest,
        out,
        real_dir=args.real_dir,
        real_split=args.real_split,
        max_frames=args.max_frames,
        drive_map=args.drive_map,
        drive_steps=args.drive_steps,
        seed=args.seed,
        segmenter=args.segmenter,
        baselines=not args.no_baselines,
        drive_frames=drive_frames,
    )
    metrics["distortion"] = camera["distortion"]
    metrics["provenance"] = provenance()
    write_json_atomic(out / "image_metrics.json", metrics)
    header = f"Produced by `{metrics['provenance']['command']}` at git `{metrics['provenance']['git_sha']}`.\n\n"
    write_text_atomic(out / "image_metrics.md", header + "\n".join(render_image_metrics(metrics)))
    print("\n".join(render_image_metrics(metrics)))
    print(f"image-metrics: wrote {out / 'image_metrics.md'}, {out / 'image_metrics.json'}")
    return 0


def _cmd_model_card(args: argparse.Namespace) -> int:
    from generators.model_card import model_card
    from sim2real_env.provenance import write_text_atomic

    def read(path: str | None) -> dict | None:
        if not path:
            return None
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"model-card: {file} does not exist")
        return dict(json.loads(file.read_text()))

    run = read(args.run)
    if run is not None and "provenance" in run:
        run = {**run["provenance"], **{k: v for k, v in run.items() if k != "provenance"}}
    metrics = {Path(m).stem: read(m) for m in args.metrics}
    tables = []
    for item in args.table:
        file = Path(item)
        if not file.is_file():
            raise FileNotFoundError(f"model-card: --table {file} does not exist")
        tables.append(file.read_text())
    text = model_card(args.checkpoint, run=run, metrics=metrics or None, limitations=args.limitation, tables=tables)
    from generators.checkpoint import resolve_checkpoint

    out = Path(args.out) if args.out else resolve_checkpoint(args.checkpoint) / "MODEL_CARD.md"
    write_text_atomic(out, text)
    print(f"model-card: wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from agents.algorithms import ALGORITHMS  # names only: the algorithms import their code when run

    parser = argparse.ArgumentParser(prog="sim2real", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("harvest", help="drive the expert and record a paired frame dataset")
    p.add_argument("--out", required=True, help="dataset directory (resumed if it holds the same harvest)")
    p.add_argument("--maps", default="small_loop,loop_empty", help="comma-separated map names")
    p.add_argument("--episodes", type=int, default=2, help="episodes per map")
    p.add_argument("--steps", type=int, default=300, help="steps per episode")
    p.add_argument("--every", type=int, default=5, help="record every N-th step")
    p.add_argument("--camera", type=_camera, default=(160, 120), help="WIDTHxHEIGHT")
    p.add_argument("--noise", type=float, default=0.1, help="std of the expert's wheel-command noise")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--distortion", action="store_true", help="render through the Duckiebot's calibrated fisheye lens")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_ray_arguments(p)
    p.set_defaults(func=_cmd_harvest)

    p = sub.add_parser("drive", help="run the expert, write a video and a summary")
    p.add_argument("--out", default="runs/drive")
    p.add_argument("--map", default="small_loop")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--camera", type=_camera, default=(160, 120), help="WIDTHxHEIGHT")
    p.add_argument("--format", choices=("mp4", "gif"), default="mp4")
    p.add_argument("--noise", type=float, default=0.0, help="std of the expert's wheel-command noise")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_drive)

    p = sub.add_parser("bench-env", help="simulator steps/s and memory -> benchmarks/results/env_speed.*")
    p.add_argument("--maps", default="loop_empty,small_loop,udem1")
    p.add_argument("--cameras", type=_cameras, default="80x60,160x120,640x480", help="comma-separated WIDTHxHEIGHT")
    p.add_argument("--randomization", default="off,on", help="comma-separated: off, on")
    p.add_argument("--steps", type=int, default=200, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "benchmarks" / "results"))
    p.set_defaults(func=_cmd_bench_env)

    p = sub.add_parser("train-generator", help="train a translation model from a YAML config")
    p.add_argument("--config", required=True, help="configs/generators/<name>.yaml")
    p.add_argument("--resume", action="store_true", help="continue <out>/checkpoints/last exactly")
    p.add_argument(
        "--real-dir", help="folder of real frames (default: $SIM2REAL_REAL_DATA or ../shared/data/duckietown_real)"
    )
    p.add_argument("--sim-dir", help="folder of simulator frames (e.g. a harvest's canonical/)")
    p.add_argument("--max-steps", type=_max_steps, help="stop (with a checkpoint) after this many steps of this call")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. training.steps=100")
    p.set_defaults(func=_cmd_train_generator)

    p = sub.add_parser("distill", help="train a small real-time student on a teacher generator's translations")
    p.add_argument("--teacher", required=True, help="the sim->real checkpoint to imitate")
    p.add_argument("--config", default="configs/generators/student.yaml")
    p.add_argument("--sim-dir", help="folder of simulator frames (e.g. a harvest's canonical/)")
    p.add_argument(
        "--real-dir",
        help="real frames for the KID log and, with losses.lambda_adversarial, the discriminator "
        "(default: $SIM2REAL_REAL_DATA or shared data)",
    )
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-steps", type=_max_steps)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. training.steps=100")
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("plot-kid", help="compare training runs' KID logs (against steps and wall time) in one PNG")
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR holding kid.csv (repeatable)")
    p.add_argument("--key", default="kid_lite2", choices=("kid_lite2", "kid_lite0"))
    p.add_argument("--out", required=True, help="PNG path")
    p.set_defaults(func=_cmd_plot_kid)

    p = sub.add_parser(
        "train-segmenter", help="train the lane-marking segmenter (semantic consistency, marking IoU) on a harvest"
    )
    p.add_argument(
        "--harvest", required=True, help="a `sim2real harvest` folder (canonical/, randomized/, segmentation/)"
    )
    p.add_argument("--val-harvest", help="another harvest to report per-class IoU on")
    p.add_argument("--out", required=True, help="checkpoint directory to create")
    p.add_argument("--width", type=int, default=8, help="U-Net channels at full resolution")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument(
        "--augment", default="luminance", choices=("luminance", "color"), help="photometric augmentation (luminance)"
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train_segmenter)

    p = sub.add_parser("translate", help="translate an image, a folder of images or a video with a checkpoint")
    p.add_argument("--checkpoint", required=True, help="generator checkpoint directory")
    p.add_argument("--side-by-side", action="store_true", help="write input | translated")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("input", help="image file, folder of images, or .mp4/.gif video")
    p.add_argument("output", help="image file, folder, or .mp4/.gif video (matching the input kind)")
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser(
        "interpolate", help="blend two checkpoints of one architecture: (1 - weight) * start + weight * end"
    )
    p.add_argument("--start", required=True, help="generator checkpoint at weight 0")
    p.add_argument("--end", required=True, help="generator checkpoint at weight 1 (same method and model config)")
    p.add_argument("--weight", type=float, required=True, help="in [0, 1]")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.set_defaults(func=_cmd_interpolate)

    p = sub.add_parser("stylize", help="per-image neural style transfer of a folder of frames (Gatys et al.)")
    p.add_argument("--style", required=True, help="style image (e.g. one real Duckiebot frame)")
    p.add_argument("--size", type=_camera, default=(160, 120), help="WIDTHxHEIGHT of the output frames")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps per frame")
    p.add_argument("--backbone", choices=("efficientnet_lite0", "vgg19"), default="efficientnet_lite0")
    p.add_argument("--vgg19-path", help="torchvision VGG-19 state dict, needed for --backbone vgg19")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("input", help="folder of frames")
    p.add_argument("output", help="folder for the stylised frames")
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser(
        "bench-generators", help="generator ms/frame and training it/s -> benchmarks/results/generators.*"
    )
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--cases", help="comma-separated case names (default: all)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "benchmarks" / "results"))
    p.set_defaults(func=_cmd_bench_generators)

    p = sub.add_parser("video", help="drive the expert, write simulator | translated side by side")
    p.add_argument(
        "--checkpoint", required=True, action="append", help="sim->real generator checkpoint (repeat: one panel each)"
    )
    p.add_argument("--map", default="small_loop")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--stills", type=int, default=0, help="also write <out>.png with this many labelled moments")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--camera", type=_camera, default=(160, 120), help="WIDTHxHEIGHT")
    p.add_argument("--out", default="runs/video/side_by_side.mp4", help=".mp4 or .gif")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_video)

    p = sub.add_parser(
        "eval-canonical", help="PSNR/SSIM of a real->canonical model on held-out distorted and randomized frames"
    )
    p.add_argument("--checkpoint", required=True, help="real->canonical generator checkpoint directory")
    p.add_argument("--dataset", required=True, help="a sim2real harvest folder (canonical/, randomized/)")
    p.add_argument("--out", default="runs/eval_canonical")
    p.add_argument("--crop", type=_fraction, default=0.9, help="central crop fraction the metrics use")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the distortion draw")
    p.add_argument(
        "--split", default="val", choices=["val", "all"], help="'all' for a harvest training never saw (another seed)"
    )
    p.set_defaults(func=_cmd_eval_canonical)

    p = sub.add_parser("bench-wrapper", help="env-steps/s raw vs wrapped -> benchmarks/results/wrapper_speed.*")
    p.add_argument("--map", default="small_loop")
    p.add_argument("--cameras", type=_cameras, default="160x120,80x60", help="WxH,... (PPO uses the first)")
    p.add_argument("--envs", default="1,4,8", help="comma-separated env counts")
    p.add_argument("--kinds", default="dummy,subproc", help="comma-separated: dummy, subproc")
    p.add_argument("--generators", default="cyclegan default,cyclegan w8 b6 k7", help="cases of bench-generators")
    p.add_argument("--steps", type=int, default=100, help="vector steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ppo-steps", type=int, default=1024, help="PPO env steps per pipeline (0 skips)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "benchmarks" / "results"))
    p.set_defaults(func=_cmd_bench_wrapper)

    p = sub.add_parser("train-agent", help="train a PPO or behaviour-cloning agent on an observation pipeline")
    p.add_argument("--algo", required=True, choices=list(ALGORITHMS))
    p.add_argument("--pipeline", required=True, help="one of agents.pipeline.PIPELINES (raw, sim2real, ...)")
    p.add_argument("--config", required=True, help="configs/agents/<name>.yaml")
    p.add_argument("--checkpoint", help="generator checkpoint for sim2real/canonicalized (else checkpoints.<pipeline>)")
    p.add_argument("--out", help="output folder (default: the config's out)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="PPO: continue <out>/checkpoints/last (its ppo.zip is unpickled: trusted runs only)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. bc.epochs=4")
    p.set_defaults(func=_cmd_train_agent)

    p = sub.add_parser("evaluate", help="closed-loop transfer matrix: agents x domains x seeded episodes -> report")
    p.add_argument("--config", required=True, help="configs/eval/<name>.yaml")
    p.add_argument("--rerender", action="store_true", help="re-aggregate the stored episodes, rewrite the report")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. episodes=3")
    _add_ray_arguments(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "transfer-benchmark",
        help="train agents on every pipeline x algorithm x seed, evaluate them closed-loop, report with rliable",
    )
    p.add_argument("--config", required=True, help="configs/benchmark/<name>.yaml")
    p.add_argument("--stages", help="comma-separated subset of train,evaluate,report (default: all three)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seeds=[0,1]")
    _add_ray_arguments(p)
    p.set_defaults(func=_cmd_transfer_benchmark)

    p = sub.add_parser(
        "image-metrics", help="realism (FID/KID, domain classifier), marking IoU, colour thresholds, temporal change"
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="a sim->real generator: PATH, pretrained:<name> or NAME=PATH (repeatable; one table row each); "
        "domain:<name> measures an evaluation domain's image operations (a real-proxy camera) instead",
    )
    p.add_argument("--harvest", required=True, help="a `sim2real harvest` folder (canonical/ + segmentation/)")
    p.add_argument("--real-dir", help="real frames (default: $SIM2REAL_REAL_DATA or ../shared/data/duckietown_real)")
    p.add_argument("--real-split", default="val", choices=("val", "train", "all"), help="which real frames (val)")
    p.add_argument("--segmenter", help="a `sim2real train-segmenter` checkpoint for per-class marking IoU")
    p.add_argument("--no-baselines", action="store_true", help="leave out the identity and color_transfer rows")
    p.add_argument("--out", required=True)
    p.add_argument("--max-frames", type=int, default=400)
    p.add_argument("--drive-map", default="small_loop")
    p.add_argument("--drive-steps", type=int, default=150)
    p.add_argument("--seed", type=_seed, default=0)
    p.set_defaults(func=_cmd_image_metrics)

    p = sub.add_parser("model-card", help="write MODEL_CARD.md for a checkpoint from its config, run and metrics")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--run", help="the training run's run.json")
    p.add_argument("--metrics", nargs="*", default=[], help="metrics JSON files to include")
    p.add_argument("--limitation", action="append", default=[], help="a known limitation (repeatable)")
    p.add_argument("--table", action="append", default=[], help="a Markdown results file to include (repeatable)")
    p.add_argument("--out", help="default: <checkpoint>/MODEL_CARD.md")
    p.set_defaults(func=_cmd_model_card)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim2real`` console script."""
    import yaml

    parser = build_parser()
    # key=value overrides may sit anywhere after the command, options after them included
    # (argparse alone takes a positional list only before the first option that follows it).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
            args.overrides = [*(args.overrides or []), *extra]
        else:
            parser.parse_args(argv)  # argparse's own "unrecognized arguments" error and exit 2
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (Sim2RealError, OSError, yaml.YAMLError) as exc:
        # What the user can fix (a bad value or file, a missing library; OSError: a missing file, a
        # full disk, a permission, which names its path): one line, no traceback. Anything else,
        # a plain ValueError or TypeError included, is a bug and keeps its traceback.
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
            exc = Sim2RealError(f"{exc.filename} is in the way: a file stands where a folder is needed")
        print(f"sim2real {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
