"""The SB3 callbacks of PPO training (:func:`agents.ppo.train_ppo`), built on SB3's own classes.

- :class:`LaneEvalCallback` is an ``EvalCallback`` scored by the mean distance driven in the lane
  on fixed seeds (our episode runner, the evaluation harness's measure) instead of
  ``evaluate_policy``'s mean reward; SB3's ``best_mean_reward`` / ``callback_on_new_best`` keep
  the best policy (:class:`SaveBestAgent`).
- :class:`StepCheckpoint` is a ``CheckpointCallback`` that writes the run's step folder
  (``checkpoints/<step>/``: agent, ``ppo.zip``, ``progress.json``) instead of a bare archive.
- :class:`OnMultiplesOf` is an ``EveryNTimesteps`` that fires at multiples of its period (also
  after ``--resume``, where ``EveryNTimesteps`` would fire at once and then drift by ``n_envs``).
- :class:`UpdateLog` keeps training episodes and every update's SB3 losses in ``progress.json``;
  :class:`CriticWarmup` freezes the actor for the first env steps; :class:`StopOnSignal` ends
  ``learn`` after the env step a SIGINT/SIGTERM arrived in.

Importing this module imports stable-baselines3; :mod:`agents.ppo` does so only inside training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback, EveryNTimesteps

from agents.episodes import run_episode, summarize
from sim2real_env.signals import StopFlag

#: Lane measures logged to TensorBoard (``eval/<name>``) at each evaluation.
LOGGED = ("distance_m", "distance_in_lane_m", "out_of_lane_fraction", "survival_s", "return")
#: SB3 training logs kept per update in ``progress.json`` (``updates``).
UPDATE_LOGS = (
    "train/value_loss",
    "train/entropy_loss",
    "train/approx_kl",
    "train/clip_fraction",
    "train/explained_variance",
    "train/std",
    "train/policy_gradient_loss",
)


class OnMultiplesOf(EveryNTimesteps):
    """``EveryNTimesteps`` whose events fall on the first env step at or past each multiple of ``n_steps``.

    A resumed run at 64 steps with a period of 64 next fires at 128, as an uninterrupted run would.
    """

    def _init_callback(self) -> None:
        super()._init_callback()
        self.last_time_trigger = (self.model.num_timesteps // self.n_steps) * self.n_steps

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last_time_trigger >= self.n_steps:
            self.last_time_trigger = (self.num_timesteps // self.n_steps) * self.n_steps
            return self._on_event()
        return True


class LaneEvalCallback(EvalCallback):
    """SB3's ``EvalCallback``, scored by the mean distance in lane of fixed-seed episodes.

    ``progress`` is the run's record: every evaluation is appended to ``progress["evaluations"]``
    (env steps, wall time, the lane measures, each episode's distance in lane), the first to reach
    ``target_distance_m`` is ``progress["target_reached"]`` and the best is ``progress["best"]``;
    ``best_mean_reward`` (metres in lane here) starts from a resumed run's best. Each call
    evaluates (``eval_freq`` 1): trigger it with :class:`OnMultiplesOf`, or call :meth:`evaluate`.
    """

    def __init__(
        self,
        eval_env: Any,
        act: Callable[[np.ndarray], np.ndarray],
        seeds: list[int],
        progress: dict[str, Any],
        *,
        target_distance_m: float,
        wall_s: Callable[[], float],
        callback_on_new_best: BaseCallback | None = None,
    ) -> None:
        super().__init__(
            eval_env, callback_on_new_best=callback_on_new_best, n_eval_episodes=len(seeds), eval_freq=1, verbose=0
        )
        self.episode_env = eval_env  # EvalCallback keeps it wrapped in a DummyVecEnv that is never stepped
        self.act, self.seeds, self.progress = act, seeds, progress
        self.target_distance_m, self.wall_s = target_distance_m, wall_s
        best = progress.get("best")
        self.best_mean_reward = -np.inf if best is None else float(best["distance_in_lane_m"])

    def _init_callback(self) -> None:
        # Not EvalCallback's, which warns that the eval env is not a VecEnv of the training env's
        # kind; ours is one plain env that our episode runner drives.
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)

    def _on_step(self) -> bool:
        return self.evaluate()

    def evaluate(self) -> bool:
        """Run the episodes, record them, keep the best; False when a child callback stops training."""
        steps = int(self.model.num_timesteps)
        results = [run_episode(self.episode_env, self.act, s) for s in self.seeds]
        means = summarize(results)
        wall = self.wall_s()
        self.progress["evaluations"].append(
            {
                "env_steps": steps,
                "wall_s": wall,
                **means,
                "distance_in_lane_each": [r.distance_in_lane_m for r in results],
            }
        )
        logger = getattr(self.model, "_logger", None)  # None when a loaded model has not learned in this call
        if logger is not None:
            for key in LOGGED:
                logger.record(f"eval/{key}", means[key])
        if self.progress["target_reached"] is None and means["distance_in_lane_m"] >= self.target_distance_m:
            self.progress["target_reached"] = {"env_steps": steps, "wall_s": wall}
        self.last_mean_reward = float(means["distance_in_lane_m"])
        continue_training = True
        # PPO on this task is not monotone (a policy that drives well can start weaving 10k steps
        # later), so the best evaluated policy is kept beside the last one.
        if self.last_mean_reward > self.best_mean_reward:
            self.best_mean_reward = self.last_mean_reward
            self.progress["best"] = {
                "env_steps": steps,
                "wall_s": wall,
                "distance_in_lane_m": means["distance_in_lane_m"],
                "distance_m": means["distance_m"],
            }
            if self.callback_on_new_best is not None:
                continue_training = self.callback_on_new_best.on_step()
        return continue_training and self._on_event()


class SaveBestAgent(BaseCallback):
    """``callback_on_new_best`` of :class:`LaneEvalCallback`: ``save()`` writes ``checkpoints/best``."""

    def __init__(self, save: Callable[[], Any]) -> None:
        super().__init__()
        self.save = save

    def _on_step(self) -> bool:
        self.save()
        return True


class StepCheckpoint(CheckpointCallback):
    """SB3's ``CheckpointCallback`` writing the run's step folder (``save()``) at each call it gets.

    ``save_freq`` is 1: trigger it with :class:`OnMultiplesOf`. The folder, not a bare
    ``<prefix>_<steps>_steps.zip``, because the archive must be paired with the run's progress
    record and an agent that loads without unpickling (:mod:`sim2real_env.checkpoints`).
    """

    def __init__(self, save: Callable[[], Any], save_path: str) -> None:
        super().__init__(save_freq=1, save_path=save_path, name_prefix="ppo")
        self.save = save

    def _on_step(self) -> bool:
        self.save()
        return True


class UpdateLog(BaseCallback):
    """Training episodes (return, length) and each policy update's SB3 losses into ``progress``.

    The losses of an update are still in the logger at the next rollout's end (dumped after that
    hook), so each is kept under the env steps it was made after, ``rollout_steps`` earlier; the
    last update, which no rollout follows, at the end of training. A collapse can then be read off
    value loss, entropy and KL.
    """

    def __init__(self, progress: dict[str, Any], rollout_steps: int) -> None:
        super().__init__()
        self.progress, self.rollout_steps = progress, rollout_steps

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.progress["train_episodes"].append(
                    {
                        "env_steps": int(self.num_timesteps),
                        "return": float(info["episode"]["r"]),
                        "length": int(info["episode"]["l"]),
                    }
                )
        return True

    def _on_rollout_end(self) -> None:
        self.record(int(self.model.num_timesteps) - self.rollout_steps)

    def _on_training_end(self) -> None:
        self.record(int(self.model.num_timesteps))

    def record(self, env_steps: int) -> None:
        """The SB3 losses of the update made after ``env_steps`` env steps (once per update)."""
        logged = self.model.logger.name_to_value
        updates = self.progress.setdefault("updates", [])
        if "train/value_loss" in logged and (not updates or updates[-1]["env_steps"] < env_steps):
            updates.append(
                {"env_steps": env_steps}
                | {key.split("/", 1)[1]: float(logged[key]) for key in UPDATE_LOGS if key in logged}
            )


class CriticWarmup(BaseCallback):
    """Before each policy update: the actor learns only once ``warmup_steps`` env steps are done.

    Until then the actor (with the features SB3's CnnPolicy shares) and its std are frozen, so the
    first updates fit the value head to a cloned policy's returns instead of moving that policy.
    """

    def __init__(self, warmup_steps: int) -> None:
        super().__init__()
        self.warmup_steps = warmup_steps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        set_actor_trainable(self.model.policy, self.model.num_timesteps > self.warmup_steps)


def set_actor_trainable(policy: Any, trainable: bool) -> None:
    """Freeze or thaw everything the action depends on (features included when shared)."""
    for module in (policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net):
        for parameter in module.parameters():
            parameter.requires_grad_(trainable)
    policy.log_std.requires_grad_(trainable)


class StopOnSignal(BaseCallback):
    """Ends ``learn`` after the env step in which ``stop`` was requested (SIGINT/SIGTERM).

    A KeyboardInterrupt inside a simulator step can come out as an unrelated ValueError (upstream
    bare excepts), so a signal only sets the flag and training stops here, between steps.
    """

    def __init__(self, stop: StopFlag) -> None:
        super().__init__()
        self.stop = stop

    def _on_step(self) -> bool:
        return not self.stop.requested
