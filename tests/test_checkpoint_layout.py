"""The one checkpoint layout (``sim2real_env.checkpoints``): step folders, ``last``, ``best``, pruning.

Generator and agent training use it through their own tests (``test_generators``, ``test_agents``);
here the layout alone, on folders of plain files, including what a crash between the steps of a
save leaves and the folders of the older layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim2real_env.checkpoints import (
    LayoutError,
    adopt_legacy_best,
    best_folder,
    discard_after,
    has_saved,
    last_folder,
    resolve_run_path,
    run_label,
    save_step,
    saved_steps,
    step_folder,
)

LEGACY = {"last": "checkpoint", "best": "best"}


def write_marker(value: str) -> object:
    def write(folder: Path) -> None:
        (folder / "config.json").write_text(value)

    return write


def test_save_points_last_and_prunes_to_keep_last(tmp_path: Path) -> None:
    assert not has_saved(tmp_path) and last_folder(tmp_path) is None
    for step in (2, 4, 6, 8):
        folder = save_step(tmp_path, step, write_marker(f"step {step}"), keep_last=2)  # type: ignore[arg-type]
        assert folder == step_folder(tmp_path, step) == tmp_path / "checkpoints" / f"{step:09d}"
        assert last_folder(tmp_path) == folder
    assert saved_steps(tmp_path) == [6, 8]
    assert (tmp_path / "checkpoints" / "last").read_text() == "000000008\n"
    assert (last_folder(tmp_path) / "config.json").read_text() == "step 8"  # type: ignore[operator]
    # keep_last 0 keeps every one; the same step is replaced whole.
    save_step(tmp_path, 10, write_marker("10"), keep_last=0)  # type: ignore[arg-type]
    save_step(tmp_path, 10, write_marker("10 again"), keep_last=0)  # type: ignore[arg-type]
    assert saved_steps(tmp_path) == [6, 8, 10]
    assert (step_folder(tmp_path, 10) / "config.json").read_text() == "10 again"
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["000000006", "000000008", "000000010", "last"]


def test_a_crash_between_folder_and_pointer_leaves_last_on_a_whole_folder(tmp_path: Path) -> None:
    save_step(tmp_path, 2, write_marker("2"), keep_last=2)  # type: ignore[arg-type]

    def dies(folder: Path) -> None:
        (folder / "config.json").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_step(tmp_path, 4, dies, keep_last=2)
    assert saved_steps(tmp_path) == [2] and last_folder(tmp_path) == step_folder(tmp_path, 2)
    # A folder written whose pointer never moved (killed between the two): last still names step 2,
    # the next save points past it, and a resume from step 2 discards it.
    step_folder(tmp_path, 4).mkdir()
    assert last_folder(tmp_path) == step_folder(tmp_path, 2)
    assert discard_after(tmp_path, 2) == [step_folder(tmp_path, 4)] and saved_steps(tmp_path) == [2]
    # Pruning never removes the folder last names, even when newer (orphan) folders outnumber it.
    for step in (6, 8):
        step_folder(tmp_path, step).mkdir()
    save_step(tmp_path, 3, write_marker("3"), keep_last=1)  # type: ignore[arg-type]
    assert last_folder(tmp_path) == step_folder(tmp_path, 3) and 3 in saved_steps(tmp_path)


def test_bad_pointers_are_errors_naming_the_file(tmp_path: Path) -> None:
    save_step(tmp_path, 2, write_marker("2"), keep_last=2)  # type: ignore[arg-type]
    pointer = tmp_path / "checkpoints" / "last"
    pointer.write_text("../../etc\n")
    with pytest.raises(LayoutError, match="must hold a step folder name"):
        last_folder(tmp_path)
    pointer.write_text("000000004\n")
    with pytest.raises(LayoutError, match="names 000000004, which .* does not hold"):
        resolve_run_path(tmp_path, marker="config.json")
    with pytest.raises(ValueError, match="integer >= 0"):
        step_folder(tmp_path, -1)


def test_resolve_accepts_every_way_to_name_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    last = save_step(run, 4, write_marker("4"), keep_last=2)  # type: ignore[arg-type]
    best_folder(run).mkdir()
    (best_folder(run) / "config.json").write_text("best")
    for path in (run, run / "checkpoints", run / "checkpoints" / "last", last):
        assert resolve_run_path(path, marker="config.json", legacy=LEGACY) == last, path
    assert resolve_run_path(run, marker="config.json", default="best") == best_folder(run)
    assert resolve_run_path(run / "checkpoints" / "best", marker="config.json") == best_folder(run)
    # The older layout: a run folder means its checkpoint/ (or best/); those folders are used as they are.
    old = tmp_path / "old"
    for name in ("checkpoint", "best"):
        (old / name).mkdir(parents=True)
        (old / name / "config.json").write_text(name)
    assert resolve_run_path(old, marker="config.json", legacy=LEGACY) == old / "checkpoint"
    assert resolve_run_path(old, marker="config.json", default="best", legacy=LEGACY) == old / "best"
    assert resolve_run_path(old / "checkpoint", marker="config.json", legacy=LEGACY) == old / "checkpoint"
    # A path spelled in the new layout finds the older run's folder of that part (one config for both).
    assert resolve_run_path(old / "checkpoints" / "last", marker="config.json", legacy=LEGACY) == old / "checkpoint"
    assert resolve_run_path(old / "checkpoints" / "best", marker="config.json", legacy=LEGACY) == old / "best"
    assert resolve_run_path(old / "checkpoints" / "best", marker="config.json") == old / "checkpoints" / "best"
    # Anything else comes back unchanged, for the caller's own error.
    assert resolve_run_path(tmp_path / "nope", marker="config.json") == tmp_path / "nope"
    empty = run / "x"
    empty.mkdir()
    assert resolve_run_path(empty, marker="config.json", legacy=LEGACY) == empty
    (tmp_path / "unsaved" / "checkpoints").mkdir(parents=True)
    with pytest.raises(LayoutError, match="has not saved a checkpoint yet"):
        resolve_run_path(tmp_path / "unsaved", marker="config.json")


def test_adopt_legacy_best_copies_once(tmp_path: Path) -> None:
    (tmp_path / "best_agent").mkdir()
    (tmp_path / "best_agent" / "agent.json").write_text("old best")
    assert adopt_legacy_best(tmp_path, "best_agent")
    assert (best_folder(tmp_path) / "agent.json").read_text() == "old best"
    (best_folder(tmp_path) / "agent.json").write_text("new best")
    assert not adopt_legacy_best(tmp_path, "best_agent")  # a best of this layout is never replaced by the old one
    assert (best_folder(tmp_path) / "agent.json").read_text() == "new best"
    assert not adopt_legacy_best(tmp_path / "elsewhere", "best_agent")


def test_run_label() -> None:
    for path in (
        "runs/cut/checkpoints/last",
        "runs/cut/checkpoints/best",
        "runs/cut/checkpoints/000002000",
        "runs/cut/checkpoints",
        "runs/cut/checkpoint",
        "runs/cut/best/",
        "pretrained:cut",
        "cut",
    ):
        assert run_label(path) == "cut", path
    assert run_label("runs/my_ckpt") == "my_ckpt" and run_label("checkpoint") == "checkpoint"
