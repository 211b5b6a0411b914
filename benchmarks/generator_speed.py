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
    (
        "fastcut projected",
        "cut",
        {"prior_checkpoint": "pretrained:color_transfer"},
        {"mode": "fastcut", "discriminator": "projected"},
    ),
]


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
    """Measure every case on every available device; write ``generators.{json,md}``."""
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
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".", ""]
    return "\n".join(lines)
