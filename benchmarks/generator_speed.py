"""Generator speed: inference ms/frame (batch 1 and 8) and training it/s, per method and size.

Run with ``sim2real bench-generators``; writes ``generators.json`` and ``generators.md``.
Inference times ``generator.translate`` on uint8 frames (conversion included), eager torch and,
on the CPU, ONNX Runtime (the wrappers' default there); training times one ``train_step`` of the
method's trainer on random batches of 4 at the model size (no data loading). Medians of repeats;
CPU always, CUDA when present.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generators.registry import method_class, trainer_class
from sim2real_env.errors import ConfigError
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic

_FAST = {"width": 8, "blocks": 3, "outer_kernel": 3}

#: (label, method, model config, losses config)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("cyclegan default", "cyclegan", {"image_size": [60, 80], **_FAST}, {}),
    ("cyclegan w8 b6 k7", "cyclegan", {"image_size": [60, 80], "width": 8, "blocks": 6}, {}),
    ("cyclegan w16", "cyclegan", {"image_size": [60, 80], "width": 16, "blocks": 6}, {}),
    ("cyclegan w16 depthwise", "cyclegan", {"image_size": [60, 80], "width": 16, "blocks": 6, "depthwise": True}, {}),
    ("cyclegan default 120x160", "cyclegan", {"image_size": [120, 160], **_FAST}, {}),
    ("cyclegan reference", "cyclegan", {"image_size": [60, 80], "width": 64, "blocks": 9, "upsample": "transpose"}, {}),
    ("unit default", "unit", {"image_size": [60, 80]}, {}),
    ("nst default", "nst", {"image_size": [60, 80]}, {}),
    ("color_transfer", "color_transfer", {}, {}),
    ("student default", "student", {}, {"teacher": "pretrained:color_transfer"}),
    ("student row_bias", "student", {"row_bias": True}, {"teacher": "pretrained:color_transfer"}),
    ("student pixel_bias", "student", {"pixel_bias": True}, {"teacher": "pretrained:color_transfer"}),
    (
        "student pixel_bias camera_blur",
        "student",
        {"pixel_bias": True, "camera_blur": 0.5},
        {"teacher": "pretrained:color_transfer"},
    ),
    (
        "fastcut projected",
        "cut",
        {"prior_checkpoint": "pretrained:color_transfer"},
        {"mode": "fastcut", "discriminator": "projected"},
    ),
]


#: The reference network (Zhu et al.: 9 blocks, width 64, transposed convolutions, 7x7 outer) at
#: batch 1, the setting the authors' code was timed in side by side (benchmarks/README.md).
REFERENCE_NETWORK: dict[str, Any] = {"width": 64, "blocks": 9, "upsample": "transpose", "outer_kernel": 7}
TRAINING_STEP_SIZES = ((60, 80), (120, 160))


def training_step_comparison(
    sizes: tuple[tuple[int, int], ...] = TRAINING_STEP_SIZES,
    network: dict[str, Any] | None = None,
    batch: int = 1,
    steps: int = 3,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """CycleGAN training it/s, each pass on its own (as the authors' loop) vs batched passes.

    Batched: ``CycleGANTrainer.joint_passes``. Interleaved rounds, medians.
    """
    from generators.cyclegan.model import CycleGAN
    from generators.cyclegan.train import CycleGANLosses, CycleGANTrainer

    cls = CycleGAN
    rows = []
    for height, width in sizes:
        steppers = {}
        for joint in (False, True):
            torch.manual_seed(0)
            model = cls(cls.config_class.from_dict({"image_size": [height, width], **(network or REFERENCE_NETWORK)}))
            trainer = CycleGANTrainer(model, CycleGANLosses(), lr=2e-4, beta1=0.5, seed=0)
            trainer.joint_passes = joint
            sim = torch.rand(batch, 3, height, width) * 2 - 1
            real = torch.rand(batch, 3, height, width) * 2 - 1
            steppers["joint" if joint else "separate"] = lambda t=trainer, a=sim, b=real: t.train_step(a, b)
        rates: dict[str, list[float]] = {name: [] for name in steppers}
        for fn in steppers.values():
            fn()  # warm-up (allocator, oneDNN primitive cache)
        for _ in range(rounds):
            for name, fn in steppers.items():
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                rates[name].append(steps / (time.perf_counter() - start))
        separate, joint_rate = statistics.median(rates["separate"]), statistics.median(rates["joint"])
        row = {
            "image_size": [height, width],
            "batch": batch,
            "it_per_s_separate_passes": round(separate, 3),
            "it_per_s_joint_passes": round(joint_rate, 3),
            "speedup": round(joint_rate / separate, 2),
        }
        rows.append(row)
        print(f"bench-generators: training step {row}", flush=True)
    return rows


def _median_ms(fn: Any, repeats: int, sync: Any) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def run(
    out_dir: Path, repeats: int = 20, train_steps: int = 5, cases: list[str] | None = None, threads: int = 2
) -> list[Path]:
    """Measure every case on every available device; write ``generators.{json,md}``.

    With the ``cyclegan reference`` case selected, also the reference network's training step at
    batch 1, passes separate vs batched (:func:`training_step_comparison`), on the CPU.
    """
    if repeats < 1 or train_steps < 1 or threads < 1:
        raise ConfigError(
            f"bench-generators: repeats, train steps and threads must be >= 1, got {repeats}, {train_steps}, {threads}"
        )
    torch.set_num_threads(threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    selected = [c for c in CASES if cases is None or c[0] in cases]
    if cases and len(selected) != len(cases):
        known = ", ".join(c[0] for c in CASES)
        raise ConfigError(f"bench-generators: unknown case in {cases}; known: {known}")
    rows = []
    for device_name in devices:
        device = torch.device(device_name)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        for label, method, model_cfg, losses_cfg in selected:
            cls = method_class(method)
            torch.manual_seed(0)
            model = cls(cls.config_class.from_dict(model_cfg)).to(device).eval()
            height, width = model.image_size
            row: dict[str, Any] = {
                "case": label,
                "method": method,
                "device": device_name,
                "image_size": [height, width],
                "params": sum(p.numel() for p in model.parameters()),  # both directions where a method has two
            }
            for batch in (1, 8):
                frames = np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
                row[f"infer_ms_per_frame_b{batch}"] = round(
                    _median_ms(lambda f=frames, m=model: m.translate(f), repeats, sync) / batch, 2
                )
            if device.type == "cpu":
                from generators.runtime import OnnxRuntimeGenerator

                fast = OnnxRuntimeGenerator(model, threads=threads)
                for batch in (1, 8):
                    frames = np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
                    row[f"ort_ms_per_frame_b{batch}"] = round(
                        _median_ms(lambda f=frames, g=fast: g.translate(f), repeats, sync) / batch, 2
                    )
            trainer = trainer_class(cls)(model, trainer_class(cls).losses_class.from_dict(losses_cfg), 2e-4, 0.5, 0)
            sim = torch.rand(4, 3, height, width, device=device) * 2 - 1
            real = torch.rand(4, 3, height, width, device=device) * 2 - 1
            step_ms = _median_ms(lambda s=sim, r=real, t=trainer: t.train_step(s, r), train_steps, sync)
            row["train_it_per_s_b4"] = round(1000.0 / step_ms, 2)
            rows.append(row)
            print(f"bench-generators: {row}", flush=True)
    result = {
        "benchmark": "generators",
        "settings": {"repeats": repeats, "train_steps": train_steps, "torch_threads": threads, "statistic": "median"},
        "provenance": provenance(),
        "results": rows,
    }
    if any(label == "cyclegan reference" for label, *_ in selected):
        result["training_step"] = training_step_comparison(steps=train_steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "generators.json", out_dir / "generators.md"
    write_json_atomic(json_path, result)
    write_text_atomic(md_path, _markdown(result))
    return [json_path, md_path]


def _markdown(result: dict[str, Any]) -> str:
    prov, settings = result["provenance"], result["settings"]
    lines = [
        "# Generator speed",
        "",
        f"Command: `{prov['command']}`; git `{prov['git_sha']}`; torch threads {settings['torch_threads']}; "
        f"median of {settings['repeats']} inference repeats and {settings['train_steps']} training steps. "
        "Inference: `translate` on uint8 frames (conversion included). Training: one step (generator + "
        "discriminator updates) on a batch of 4.",
        "",
        "| case | device | size (HxW) | params (all directions) | ms/frame b1 | ms/frame b8 | ONNX Runtime b1 | "
        "ONNX Runtime b8 | train it/s (b4) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        size = "x".join(str(v) for v in r["image_size"])
        lines.append(
            f"| {r['case']} | {r['device']} | {size} | {r['params']:,} | {r['infer_ms_per_frame_b1']} | "
            f"{r['infer_ms_per_frame_b8']} | {r.get('ort_ms_per_frame_b1', '-')} | "
            f"{r.get('ort_ms_per_frame_b8', '-')} | {r['train_it_per_s_b4']} |"
        )
    if result.get("training_step"):
        lines += [
            "",
            "## Training step of the reference network (9 blocks, width 64), CPU",
            "",
            "CycleGAN train it/s with every generator and discriminator pass on its own (the authors' loop; "
            "it measured the same it/s as their code, `benchmarks/README.md`) and with the independent passes "
            "batched (each generator's translation with its identity pass, each discriminator's real with "
            f"its fake batch: the same losses). Medians of 3 interleaved rounds of {settings['train_steps']} steps.",
            "",
            "| size (HxW) | batch | separate passes it/s | joint passes it/s | speed-up |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in result["training_step"]:
            size = "x".join(str(v) for v in r["image_size"])
            lines.append(
                f"| {size} | {r['batch']} | {r['it_per_s_separate_passes']} | {r['it_per_s_joint_passes']} | "
                f"{r['speedup']}x |"
            )
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".", ""]
    return "\n".join(lines)
