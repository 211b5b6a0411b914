"""Where a result came from: git SHA, package versions, command line; and atomic file and folder writes."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = (
    "sim2real-duckietown",
    "duckietown-gym-daffy",
    "pyglet",
    "numpy",
    "torch",
    "gymnasium",
    "stable-baselines3",
    "opencv-python",
)


def git_sha() -> str:
    """Commit of the working tree, with ``-dirty`` when it has uncommitted changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages that decide our numbers."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def provenance() -> dict[str, Any]:
    """Everything a reported figure must carry: command, git SHA, versions, CPU count."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_sha": git_sha(),
        "versions": versions(),
        "cpu_count": os.cpu_count(),
    }


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, ``fsync`` and a rename.

    Every failure (no permission, disk full, a file where a folder should be) raises an
    ``OSError`` whose message names ``path``; ``path`` then keeps its previous content (or stays
    absent) and no temporary file is left behind.
    """
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        name = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        # Not mkstemp: its files are private (0600); this one gets the umask's mode, as open() would.
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        tmp = name
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if exc.errno:  # str() reads "[Errno 28] No space left on device: '<path>'"
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise OSError(f"cannot write {path}: {exc}") from exc
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def remove_partial_files(folder: Path) -> int:
    """Remove what :func:`write_bytes_atomic` leaves when its process is killed mid-write.

    For a command about to resume work in ``folder`` that it alone writes to (a kill -9 skips
    every cleanup); returns how many files went.
    """
    removed = 0
    for leftover in Path(folder).rglob(".*.partial"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


#: A temporary folder of :func:`atomic_directory` is named ``.<target>.tmp-<pid>@<host>-<random>``
#: so that a later write can tell whether the process that made it is still alive.
_OWNED_TEMP = re.compile(r"(?P<pid>\d+)@(?P<host>.+)-[a-z0-9_]+")
#: Temporary folders without an owner in their name (written before owners were recorded) count
#: as abandoned once untouched for this long; a checkpoint write takes seconds.
LEGACY_TEMP_MAX_AGE_S = 3600.0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove temporary siblings of ``path`` left by :func:`atomic_directory` writers that died.

    A folder is stale when the process named in it no longer runs on this host (``kill -9``,
    out of memory, power loss). Folders of live processes, of other hosts (a shared file system)
    and unrecognised names younger than :data:`LEGACY_TEMP_MAX_AGE_S` are left alone. Returns
    the removed folders.
    """
    path = Path(path)
    prefix = f".{path.name}.tmp-"
    host = socket.gethostname()
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for sibling in path.parent.iterdir():
        if not sibling.name.startswith(prefix) or not sibling.is_dir() or sibling.is_symlink():
            continue
        owner = _OWNED_TEMP.fullmatch(sibling.name[len(prefix) :])
        if owner is not None:
            if owner["host"] != host or _process_alive(int(owner["pid"])):
                continue
        elif time.time() - sibling.stat().st_mtime < LEGACY_TEMP_MAX_AGE_S:
            continue
        shutil.rmtree(sibling, ignore_errors=True)
        removed.append(sibling)
    return removed


def recover_directory(path: str | Path) -> bool:
    """Put back ``.<name>.old`` when ``path`` is missing; returns whether it did.

    A crash between the two renames of :func:`atomic_directory` leaves the previous version
    under that name. Readers (checkpoint loading, ``--resume``) and the next write call this, so
    such a crash costs nothing but the interrupted write.
    """
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if path.exists() or path.is_symlink() or not old.is_dir():
        return False
    try:
        old.rename(path)
    except FileNotFoundError:  # another reader recovered it first
        return path.exists()
    return True


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Fill a temporary sibling of ``path`` in the ``with`` block, then swap it in by rename.

    On any error the temporary folder is removed and an existing ``path`` stays as it was, so a
    reader never sees a half-written checkpoint or agent. What a killed writer leaves is cleaned
    up by the next write: its temporary folder (:func:`remove_stale_temporaries`) and, when it
    died between the two renames, the previous version is restored first (:func:`recover_directory`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(path)
    remove_stale_temporaries(path)
    owner = f"{os.getpid()}@{socket.gethostname()}-"
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{owner}", dir=path.parent))
    try:
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_directory(path)  # the second rename failed: the previous version goes back
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Atomic JSON write (indented, keys in insertion order)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
