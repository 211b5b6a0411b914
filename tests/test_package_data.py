"""Configs and domains as package data (issue 15 item 8): found by name outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim2real_env.yaml_config import find_config, read_yaml_mapping, shipped_configs

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_configs_are_the_repository_configs() -> None:
    link = ROOT / "sim2real_env" / "configs"
    assert link.is_symlink() and link.resolve() == (ROOT / "configs").resolve()
    assert shipped_configs().resolve() == (ROOT / "configs").resolve()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = sorted(p.relative_to(ROOT / "configs") for p in (ROOT / "configs").glob("*/*.yaml"))
    assert shipped and all((link / p).match(package_data["sim2real_env"][0]) for p in shipped)
    assert not list((ROOT / "configs").glob("*/*/*")), "deeper files are not package data: widen the glob"


def test_a_typed_path_wins_over_the_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("configs/generators/cyclegan.yaml") == shipped_configs() / "generators" / "cyclegan.yaml"
    (tmp_path / "configs" / "generators").mkdir(parents=True)
    (tmp_path / "configs" / "generators" / "cyclegan.yaml").write_text("method: unit\n")
    assert read_yaml_mapping("configs/generators/cyclegan.yaml", "config file")["method"] == "unit"
    with pytest.raises(FileNotFoundError, match="configs/generators/nope.yaml does not exist"):
        read_yaml_mapping("configs/generators/nope.yaml", "config file")


def test_installed_package_finds_its_configs_from_another_folder(tmp_path: Path) -> None:
    """The package as a wheel installs it (links followed), imported from elsewhere: no repository in sight."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "sim2real_env", site / "sim2real_env", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (site / "sim2real_env" / "configs").is_symlink()
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import sim2real_env.domains as d, sim2real_env.make as m, sim2real_env.yaml_config as y\n"
        "assert d.__file__.startswith(sys.argv[1]), d.__file__\n"
        "print(d.available_domains())\n"
        "print(d.load_domain('real_proxy_image').name)\n"
        "print(m.EnvBuild.from_yaml('configs/envs/raw.yaml').env)\n"
        "print(y.read_yaml_mapping('configs/generators/cyclegan.yaml', 'config')['method'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code, str(site)],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "real_proxy_image" in lines[0] and "canonical" in lines[0]
    assert lines[1] == "real_proxy_image"
    assert lines[3] == "cyclegan"
