"""The SB3 callbacks of PPO training (``agents.ppo_callbacks``), on a stand-in model: no simulator.

``tests/test_agents.py`` trains PPO with them on the real simulator; here their schedules and
records, which a resume must continue exactly.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback, EveryNTimesteps

from agents.ppo_callbacks import LaneEvalCallback, OnMultiplesOf, StepCheckpoint, StopOnSignal, UpdateLog


class Count(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.at: list[int] = []

    def _on_step(self) -> bool:
        self.at.append(self.num_timesteps)
        return True


def drive(callback: BaseCallback, model: Any, start: int, end: int, n_envs: int) -> None:
    """``learn``'s calls: num_timesteps grows by ``n_envs`` per env step."""
    model.num_timesteps = start
    callback.init_callback(model)
    while model.num_timesteps < end:
        model.num_timesteps += n_envs
        callback.on_step()


def test_events_fall_on_multiples_of_the_period_also_after_a_resume() -> None:
    model = SimpleNamespace(num_timesteps=0)
    straight, first, resumed = Count(), Count(), Count()
    drive(OnMultiplesOf(64, straight), model, 0, 300, n_envs=3)
    drive(OnMultiplesOf(64, first), model, 0, 129, n_envs=3)
    drive(OnMultiplesOf(64, resumed), model, 129, 300, n_envs=3)
    # The first env step at or past each multiple of 64 (3 envs: 66, 129, 192, 258), once each.
    assert straight.at == [66, 129, 192, 258] == first.at + resumed.at
    # SB3's EveryNTimesteps fires at once after a resume and then drifts by n_envs.
    plain = Count()
    drive(EveryNTimesteps(64, plain), model, 129, 300, n_envs=3)
    assert plain.at[0] == 132 and plain.at != resumed.at


def test_update_log_keeps_each_update_once_under_its_env_steps() -> None:
    progress: dict[str, Any] = {"train_episodes": []}
    logger = SimpleNamespace(name_to_value={})
    model = SimpleNamespace(num_timesteps=0, logger=logger)
    log = UpdateLog(progress, rollout_steps=64)
    log.init_callback(model)  # type: ignore[arg-type]
    model.num_timesteps = 64
    log.on_rollout_end()  # before the first update: nothing logged yet
    assert progress.get("updates") == []
    logger.name_to_value.update({"train/value_loss": 0.5, "train/approx_kl": 0.01, "time/fps": 9.0})
    model.num_timesteps = 128
    log.on_rollout_end()  # the update made after 64 env steps
    log.on_rollout_end()  # the same update again: not kept twice
    log.on_training_end()  # the last update, which no rollout follows
    assert progress["updates"] == [
        {"env_steps": 64, "value_loss": 0.5, "approx_kl": 0.01},
        {"env_steps": 128, "value_loss": 0.5, "approx_kl": 0.01},
    ]
    log.locals = {"infos": [{}, {"episode": {"r": 1.5, "l": 20}}]}
    log.on_step()
    assert progress["train_episodes"] == [{"env_steps": 128, "return": 1.5, "length": 20}]


def test_the_callbacks_are_sb3_s_own_kinds() -> None:
    assert issubclass(LaneEvalCallback, EvalCallback) and issubclass(StepCheckpoint, CheckpointCallback)
    saved: list[int] = []
    checkpoint = StepCheckpoint(lambda: saved.append(1), save_path="unused")
    checkpoint.model = SimpleNamespace(num_timesteps=0)  # type: ignore[assignment]
    assert checkpoint.on_step() and checkpoint.on_step() and saved == [1, 1]  # every call it gets saves
    stop = SimpleNamespace(requested=False)
    callback = StopOnSignal(stop)  # type: ignore[arg-type]
    callback.model = SimpleNamespace(num_timesteps=0)  # type: ignore[assignment]
    assert callback.on_step()
    stop.requested = True
    assert not callback.on_step()
