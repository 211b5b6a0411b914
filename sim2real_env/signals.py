"""Stop a long run cleanly on Ctrl-C or ``kill``: the signal sets a flag the loop checks.

A ``KeyboardInterrupt`` raised in the middle of a simulator step is not safe to catch: upstream
code has bare ``except:`` clauses that turn it into an unrelated error ("The rotation is not a
rotation") and the run dies without saving. So SIGINT/SIGTERM only set :attr:`StopFlag.requested`;
the training loop checks it between steps, saves, and the CLI exits with :data:`EXIT_SIGNALLED`.
A second signal raises ``KeyboardInterrupt`` (stop now, without the final save).

Example::

    with StopFlag() as stop:
        while not done and not stop.requested:
            train_one_step()
    save()
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

#: Exit status of a command stopped by SIGINT/SIGTERM after saving (128 + SIGINT, as shells report
#: a process killed by Ctrl-C), so ``train && evaluate`` does not go on with a half-trained model.
EXIT_SIGNALLED = 130


class StopFlag:
    """Turns SIGINT/SIGTERM into "finish this step, save, then stop" (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # second signal: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
