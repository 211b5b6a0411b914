"""Ray options of ``harvest`` and ``evaluate`` (no Ray started here; see test_cluster_sim.py)."""

from __future__ import annotations

import os

import pytest

from agents.cluster import RayOptions
from sim2real_env.cli import build_parser


def test_ray_options() -> None:
    assert not RayOptions().enabled  # the default is the serial run
    assert RayOptions(workers=2).enabled and RayOptions(address="auto").enabled
    assert RayOptions(workers=2).threads() == max(1, (os.cpu_count() or 1) // 2)
    assert RayOptions(workers=8, address="auto").threads() == 1
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="--workers must be an integer >= 1"):
            RayOptions(workers=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--ray-address"):
        RayOptions(address=" ")


@pytest.mark.parametrize("command", [["harvest", "--out", "x"], ["evaluate", "--config", "x"]])
def test_ray_flags_on_the_commands_that_fan_out(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--workers", "3", "--ray-address", "10.0.0.1:6379"])
    assert (args.workers, args.ray_address) == (3, "10.0.0.1:6379")
    assert build_parser().parse_args(command).workers == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--workers", "none"])
