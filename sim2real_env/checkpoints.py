"""One checkpoint layout for every run that trains something: generators, BC and PPO.

A run folder ``<out>`` holds::

    <out>/checkpoints/
        000001000/   one folder per saved step, written whole (atomic rename) or not at all
        000002000/   ... the newest ``keep_last`` of them are kept
        last         a one-line text file: the name of the newest step folder (``000002000``)
        best         a folder: the model the run's selection measure liked best (absent when the
                     run selects nothing: BC, generators without ``kid_every``)

A *step* is the method's own unit: generator iterations, PPO env steps, BC epochs. What a step
folder holds is the method's checkpoint (a generator's ``config.json`` + ``weights.safetensors`` +
training state; an agent's ``agent.json`` + ``policy.safetensors`` and, for PPO, the resume
state), so a step folder loads like any checkpoint of its kind.

Why ``last`` is a file and ``best`` a folder: ``last`` moves at every save, and a pointer file
replaced by ``os.replace`` is atomic on every file system (symlinks are not portable and cannot
be swapped atomically beside an atomically renamed folder), while a copy of a whole training
state at every save would double the writes. ``best`` is written at evaluations that need not
fall on a save step, holds only what uses the model (no resume state), and is never a candidate
for pruning or for a resumed run to overwrite with another policy of the same step.

Order of a save: the step folder, then the pointer, then pruning. A crash between any two leaves
``last`` naming a complete folder (the previous one) and at worst one folder too many, removed
by the next save.

Example::

    folder = save_step(out, 1000, lambda tmp: write_weights(tmp), keep_last=3)
    assert last_folder(out) == folder
    resolve_run_path("runs/cyclegan", marker="config.json")  # -> runs/cyclegan/checkpoints/000001000
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from sim2real_env.errors import InputError
from sim2real_env.provenance import atomic_directory, recover_directory, write_text_atomic

CHECKPOINTS = "checkpoints"
LAST = "last"
BEST = "best"
#: Step folders are zero-padded so that a listing sorts by step.
STEP_DIGITS = 9
_STEP_NAME = re.compile(rf"\d{{{STEP_DIGITS}}}")


class LayoutError(InputError):
    """A run folder's ``checkpoints/`` is not what this layout writes (a bad ``last``, a missing step)."""


def checkpoints_dir(out: str | Path) -> Path:
    """``<out>/checkpoints``."""
    return Path(out) / CHECKPOINTS


def step_name(step: int) -> str:
    """The folder name of ``step``: ``1000`` -> ``000001000``."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"a checkpoint step must be an integer >= 0, got {step!r}")
    return f"{step:0{STEP_DIGITS}d}"


def step_folder(out: str | Path, step: int) -> Path:
    """``<out>/checkpoints/<step>``."""
    return checkpoints_dir(out) / step_name(step)


def best_folder(out: str | Path) -> Path:
    """``<out>/checkpoints/best``."""
    return checkpoints_dir(out) / BEST


def saved_steps(out: str | Path) -> list[int]:
    """Steps of the step folders under ``<out>/checkpoints``, ascending (temporaries ignored)."""
    folder = checkpoints_dir(out)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if _STEP_NAME.fullmatch(p.name) and p.is_dir())


def read_pointer(pointer: str | Path) -> Path:
    """The step folder a ``last`` file names, checked (and put back when a crash left it as ``.old``)."""
    pointer = Path(pointer)
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"checkpoint pointer {pointer} cannot be read ({exc})") from exc
    if not _STEP_NAME.fullmatch(name):
        raise LayoutError(
            f"checkpoint pointer {pointer} must hold a step folder name of {STEP_DIGITS} digits, got {name[:40]!r}"
        )
    target = pointer.parent / name
    recover_directory(target)
    if not target.is_dir():
        raise LayoutError(f"checkpoint pointer {pointer} names {name}, which {pointer.parent} does not hold")
    return target


def last_folder(out: str | Path) -> Path | None:
    """The step folder ``<out>/checkpoints/last`` names, or None when the run has not saved one."""
    pointer = checkpoints_dir(out) / LAST
    return read_pointer(pointer) if pointer.is_file() else None


def has_saved(out: str | Path) -> bool:
    """Whether ``out`` is a run folder of this layout that has saved a step (``checkpoints/last`` exists)."""
    return (checkpoints_dir(out) / LAST).is_file()


def prune(out: str | Path, keep_last: int) -> list[Path]:
    """Remove step folders but the newest ``keep_last`` (0: keep all) and the one ``last`` names."""
    if keep_last <= 0:
        return []
    keep = set(saved_steps(out)[-keep_last:])
    last = last_folder(out)
    removed = []
    for step in saved_steps(out):
        folder = step_folder(out, step)
        if step in keep or folder == last:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def discard_after(out: str | Path, step: int) -> list[Path]:
    """Remove step folders beyond ``step``: what a killed run wrote past the checkpoint it resumes from.

    A resumed run redoes those steps (not bit for bit: see each trainer), and a folder of the
    killed stretch must not pass for one of the resumed run.
    """
    removed = []
    for later in saved_steps(out):
        if later > step:
            folder = step_folder(out, later)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def adopt_legacy_best(out: str | Path, legacy: str) -> bool:
    """Copy ``<out>/<legacy>`` (an older layout's best folder) to ``checkpoints/best`` when that is absent.

    For a run of the older layout resumed under this one: its best so far stays the best until
    the resumed run beats it. Returns whether it copied.
    """
    old, best = Path(out) / legacy, best_folder(out)
    recover_directory(best)
    if best.exists() or not old.is_dir():
        return False
    with atomic_directory(best) as tmp:
        shutil.copytree(old, tmp, dirs_exist_ok=True)
    return True


def save_step(out: str | Path, step: int, write: Callable[[Path], None], *, keep_last: int) -> Path:
    """Write ``<out>/checkpoints/<step>`` atomically (``write(tmp)`` fills it), point ``last`` at it, prune.

    A folder of the same step is replaced whole. Returns the step folder.
    """
    folder = step_folder(out, step)
    with atomic_directory(folder) as tmp:
        write(tmp)
    write_text_atomic(checkpoints_dir(out) / LAST, folder.name + "\n")
    prune(out, keep_last)
    return folder


def run_label(path: str | Path) -> str:
    """A short name for a checkpoint path: its run folder's name when it is one of a run's checkpoints.

    ``runs/cut/checkpoints/last`` (or ``.../best``, ``.../000002000``), ``runs/cut/checkpoints``,
    and the older ``runs/cut/checkpoint`` / ``runs/cut/best`` are all ``cut``; ``pretrained:cut`` is
    ``cut``; any other folder is its own name.
    """
    parts = str(path).removeprefix("pretrained:").rstrip("/").split("/")
    if len(parts) >= 3 and parts[-2] == CHECKPOINTS:
        parts = parts[:-2]
    elif len(parts) >= 2 and parts[-1] in (CHECKPOINTS, "checkpoint", BEST):
        parts = parts[:-1]
    return parts[-1]


def resolve_run_path(
    path: str | Path, *, marker: str, default: str = LAST, legacy: Mapping[str, str] | None = None
) -> Path:
    """The checkpoint folder ``path`` means; folders that are checkpoints themselves come back as they are.

    ``path`` may be a checkpoint folder (it holds ``marker``, e.g. ``config.json``; a step folder,
    ``checkpoints/best``, a folder of an older layout, a shipped one), a ``last`` pointer file,
    a ``checkpoints`` folder or a run folder (both: their ``default``, ``last`` or ``best``). A
    run folder of the older layout, without ``checkpoints/``, resolves through ``legacy``
    (``{"last": "checkpoint", "best": "best"}`` for generators), and so does a path spelled in
    this layout, ``<run>/checkpoints/last`` or ``.../best``, for such a run (so one config names
    the checkpoints of runs of both layouts). Anything else comes back unchanged, for the caller's
    own "not found" error.
    """
    path = Path(path)
    if path.name == LAST and path.parent.name == CHECKPOINTS and path.is_file():
        return read_pointer(path)
    if path.name in (LAST, BEST) and path.parent.name == CHECKPOINTS and not path.parent.exists():
        # <run>/checkpoints/last (best) of a run of the older layout: the folder that played that part.
        old = (legacy or {}).get(path.name)
        if old is not None and (path.parent.parent / old).is_dir():
            return path.parent.parent / old
    if not path.is_dir() or (path / marker).exists():
        return path
    if path.name == CHECKPOINTS:
        return _pick(path, default)
    if (path / CHECKPOINTS).is_dir():
        return _pick(path / CHECKPOINTS, default)
    old = (legacy or {}).get(default)
    if old is not None and (path / old).is_dir():
        return path / old
    return path


def _pick(checkpoints: Path, which: str) -> Path:
    if which == LAST:
        if not (checkpoints / LAST).is_file():
            raise LayoutError(f"{checkpoints} has no '{LAST}' pointer: the run has not saved a checkpoint yet")
        return read_pointer(checkpoints / LAST)
    if which == BEST:
        recover_directory(checkpoints / BEST)
        return checkpoints / BEST
    raise ValueError(f"resolve_run_path: default must be {LAST!r} or {BEST!r}, got {which!r}")
