"""One error base class (issue 15 item 7): what the CLI prints as one line, and what it does not hide."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.harvest import DatasetMismatchError
from agents.pipeline import PipelineMismatchError
from agents.saved import AgentError
from generators.checkpoint import CheckpointError
from generators.configs import config_from_dict
from generators.data import DatasetError
from generators.nst.backbones import BackboneError
from generators.segmenter import SegmenterError
from generators.training import TrainConfig
from sim2real_env import cli
from sim2real_env._compat import MissingSystemLibraryError
from sim2real_env.errors import ConfigError, InputError, Sim2RealError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConfigError, ValueError),
        (InputError, ValueError),
        (CheckpointError, ValueError),
        (DatasetError, ValueError),
        (BackboneError, ValueError),
        (SegmenterError, ValueError),
        (AgentError, ValueError),
        (DatasetMismatchError, ValueError),
        (PipelineMismatchError, ValueError),
        (MissingSystemLibraryError, RuntimeError),
    ],
)
def test_every_project_error_has_the_one_base_and_keeps_its_builtin(cls: type, builtin: type) -> None:
    assert issubclass(cls, Sim2RealError) and issubclass(cls, builtin)


def _run_cli(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> int:
    def command(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(cli, "_cmd_drive", command)  # build_parser() looks it up when main() runs
    return cli.main(["drive", "--out", "unused"])


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ConfigError("EnvConfig.camera_width must be an integer in [8, 1920], got 0"), "camera_width must be"),
        (InputError("translate: cannot read image a.png"), "cannot read image a.png"),
        (PermissionError(13, "Permission denied", "/data/out"), "Permission denied: '/data/out'"),
        (FileNotFoundError("config file nope.yaml does not exist"), "nope.yaml does not exist"),
    ],
)
def test_cli_prints_user_errors_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, line: str
) -> None:
    assert _run_cli(monkeypatch, exc) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and line in err and err.startswith("sim2real drive: error: ")


@pytest.mark.parametrize("exc", [ValueError("a bug"), TypeError("another bug"), KeyError("x")])
def test_cli_does_not_hide_bugs(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        _run_cli(monkeypatch, exc)


def test_config_checks_become_config_errors_with_their_message() -> None:
    """Values from YAML: a failing ``__post_init__`` check, or a wrong type, is the user's to fix."""
    with pytest.raises(ConfigError, match=r"training\.lr must be in \(0, 1\), got 5"):
        config_from_dict(TrainConfig, {"lr": 5}, "training")
    with pytest.raises(ConfigError, match=r"training: a value has the wrong type"):
        config_from_dict(TrainConfig, {"load_scale": "big"}, "training")


def test_missing_system_library_is_one_line_without_traceback(tmp_path: Path) -> None:
    code = (
        "import ctypes.util, sys\n"
        "real = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda name: None if name == 'EGL' else real(name)\n"
        "from sim2real_env.cli import main\n"
        f"sys.exit(main(['drive', '--out', {str(tmp_path / 'd')!r}, '--steps', '1', '--quiet']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "sim2real drive: error: " in done.stderr and "apt-get install -y libegl1" in done.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
