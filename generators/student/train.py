"""Teacher -> student distillation inside the one training loop (``sim2real distill --teacher CKPT``).

Each step translates the simulator batch with the frozen teacher and fits the student to it with
L1 plus a feature loss (L1 between frozen EfficientNet-Lite0 activations at strides 4 and 8, the
texture scale an L1 on pixels under-weights). The real batch the loop draws is not used for the
loss; the loop's KID log still measures the student against real frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from generators.configs import config_from_dict
from generators.registry import register_trainer
from generators.student.model import Student
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class DistillLosses:
    """``teacher``: the sim->real checkpoint to imitate (required)."""

    teacher: str | None = None
    lambda_l1: float = 1.0
    lambda_feature: float = 0.5

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ConfigError("losses.teacher must name the teacher checkpoint (sim2real distill --teacher CKPT)")
        from generators.checkpoint import read_config

        direction = read_config(self.teacher)["direction"]  # a missing or foreign folder fails here, before any data
        if direction != "sim->real":
            raise ConfigError(f"losses.teacher {self.teacher} translates {direction!r}; a sim->real teacher is needed")
        for name in ("lambda_l1", "lambda_feature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ConfigError(f"losses.{name} must be a number in [0, 1000], got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DistillLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


@register_trainer("student")
class DistillTrainer:
    """Frozen teacher, the student, one Adam; batches in ``[-1, 1]``."""

    losses_class = DistillLosses

    def __init__(self, model: Student, losses: DistillLosses, lr: float, beta1: float, seed: int) -> None:
        from generators.checkpoint import load_generator
        from generators.nst.backbones import EfficientNetLite0

        self.model = model
        self.losses = losses
        device = model.device
        self.teacher = load_generator(str(losses.teacher), direction="sim->real", device=device)
        self.teacher.requires_grad_(False)
        # On the CPU the frozen teacher's forward is most of a step: ONNX Runtime runs it 2-3x faster.
        self.teach: Any = self.teacher
        if device.type == "cpu":
            from generators.runtime import OnnxRuntimeGenerator

            self.teach = OnnxRuntimeGenerator(self.teacher, threads=torch.get_num_threads()).translate
        self.features = EfficientNetLite0.pretrained().to(device)
        self.features._last = 4
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The student's optimiser."""
        return [self.opt]

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """Fit the student to the teacher's translation of ``sim``."""
        self.model.train()
        with torch.no_grad():
            target = self.teach(sim)
        out = self.model(sim)
        l1 = F.l1_loss(out, target)
        feature = torch.zeros((), device=sim.device)
        if self.losses.lambda_feature > 0:
            ours, theirs = self.features.features(out), self.features.features(target)
            feature = sum((F.l1_loss(ours[k], theirs[k].detach()) for k in ("block2", "block4")), feature)
        loss = self.losses.lambda_l1 * l1 + self.losses.lambda_feature * feature
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"g_total": float(loss.detach()), "l1": float(l1.detach()), "feature": float(feature.detach())}

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns after the source: the teacher's translation, the student's."""
        self.model.eval()
        return [self.teach(source), self.model(source)]

    def state_dict(self) -> dict[str, Any]:
        """The optimiser (the teacher is frozen and named in the config)."""
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.opt.load_state_dict(state["opt"])
