"""Teacher -> student distillation inside the one training loop (``sim2real distill --teacher CKPT``).

Each step translates the simulator batch with the frozen teacher and fits the student to it with
L1 plus a feature loss (L1 between frozen EfficientNet-Lite0 activations at strides 4 and 8, the
texture scale an L1 on pixels under-weights). The loop's KID log measures the student against real
frames.

Two optional terms let the student be better than a copy, where its small capacity cannot copy:

* ``lambda_adversarial``: a projected discriminator (frozen EfficientNet-Lite0 features, as the
  teacher's) between the student's frames and the real batch the loop draws. The L1 anchor keeps
  the student near the teacher; the adversarial term spends what the student cannot copy on what
  the real frames look like instead. It makes Lite0 KID circular for the student, as it already is
  for the teacher; Lite2 stays the judge.
* ``lambda_marking`` with ``segmenter``: the robot's calibrated marking colours
  (:mod:`generators.markings`) on the marking pixels the frozen segmenter finds in the sim frame,
  so that the student keeps white and yellow lines inside the robot's HSV thresholds even where the
  teacher does not, and paints no red off the red lines. ``marking_sim_colours`` checks the
  segmenter's masks against the sim frame's own marking colours, so that the loss asks for no
  colour on the road beside a line (where the shipped student's false red and yellow were) and
  knows the red lines the segmenter misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.configs import config_from_dict
from generators.markings import marginal_red, marking_color_loss, refine_marking_labels
from generators.projected import ProjectedDiscriminator, discriminator_loss, freeze_for_generator_step, generator_loss
from generators.registry import register_trainer
from generators.student.model import Student
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class DistillLosses:
    """``teacher``: the sim->real checkpoint to imitate (required)."""

    teacher: str | None = None
    lambda_l1: float = 1.0
    lambda_feature: float = 0.5
    lambda_adversarial: float = 0.0
    #: A ``sim2real train-segmenter`` checkpoint: where the markings are, for ``lambda_marking``.
    segmenter: str | None = None
    lambda_marking: float = 0.0
    #: The marking loss's "no yellow off the yellow lines" term (:func:`marking_color_loss`).
    marking_false_yellow: bool = True
    #: Check the segmenter's marking masks against the sim frame's own colours
    #: (:func:`refine_marking_labels`: no colour asked for beside the lines). Off in older runs.
    marking_sim_colours: bool = False
    #: The form of the marking loss's "no red / no yellow elsewhere" terms (:func:`marking_color_loss`):
    #: "product" (the shipped recipes) or "hinge" (full gradient on each falsely detected pixel).
    marking_false_colour: str = "product"
    #: A factor on the marking loss's "no red elsewhere" term alone (:func:`marking_color_loss`).
    marking_no_red: float = 1.0
    #: Leave sim red-line pixels that pass the red thresholds by less than this depth out of the
    #: marking loss (:func:`marginal_red`; 0 = none). Only with ``marking_sim_colours``.
    marking_red_core: float = 0.0
    #: Weight of the colour-moment loss (:meth:`DistillTrainer.colour_loss`): the Lab mean and std of
    #: the student's frames per horizontal band against the running average of the real frames'.
    lambda_colour: float = 0.0
    colour_bands: int = 4

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ConfigError("losses.teacher must name the teacher checkpoint (sim2real distill --teacher CKPT)")
        from generators.checkpoint import read_config

        direction = read_config(self.teacher)["direction"]  # a missing or foreign folder fails here, before any data
        if direction != "sim->real":
            raise ConfigError(f"losses.teacher {self.teacher} translates {direction!r}; a sim->real teacher is needed")
        for name in ("lambda_l1", "lambda_feature", "lambda_adversarial", "lambda_marking", "lambda_colour"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ConfigError(f"losses.{name} must be a number in [0, 1000], got {value!r}")
        no_red = self.marking_no_red
        if isinstance(no_red, bool) or not isinstance(no_red, (int, float)) or not 0 <= no_red <= 100:
            raise ConfigError(f"losses.marking_no_red must be a number in [0, 100], got {no_red!r}")
        bands = self.colour_bands
        if isinstance(bands, bool) or not isinstance(bands, int) or not 1 <= bands <= 30:
            raise ConfigError(f"losses.colour_bands must be an integer in [1, 30], got {bands!r}")
        core = self.marking_red_core
        if isinstance(core, bool) or not isinstance(core, (int, float)) or not 0 <= core <= 0.5:
            raise ConfigError(f"losses.marking_red_core must be a depth in [0, 0.5], got {core!r}")
        if core and not self.marking_sim_colours:
            raise ConfigError("losses.marking_red_core needs losses.marking_sim_colours (the red labels come from it)")
        for flag in ("marking_false_yellow", "marking_sim_colours"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"losses.{flag} must be true or false, got {getattr(self, flag)!r}")
        if self.marking_false_colour not in ("product", "hinge"):
            raise ConfigError(
                f"losses.marking_false_colour must be 'product' or 'hinge', got {self.marking_false_colour!r}"
            )
        if self.lambda_marking and not self.segmenter:
            raise ConfigError("losses.lambda_marking needs losses.segmenter (the marking labels come from it)")
        if self.segmenter is not None and (not isinstance(self.segmenter, str) or not self.segmenter.strip()):
            raise ConfigError(f"losses.segmenter must name a segmenter checkpoint folder, got {self.segmenter!r}")
        if self.segmenter is not None and self.lambda_marking:
            from generators.segmenter import load_segmenter

            load_segmenter(self.segmenter)  # small: a missing or foreign folder fails here, before any data

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DistillLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


@register_trainer("student")
class DistillTrainer:
    """Frozen teacher, the student and its Adam (a discriminator and its Adam too, with ``lambda_adversarial``)."""

    losses_class = DistillLosses

    def __init__(self, model: Student, losses: DistillLosses, lr: float, beta1: float, seed: int) -> None:
        from generators.checkpoint import load_generator
        from generators.nst.backbones import EfficientNetLite0

        self.model = model
        self.losses = losses
        device = model.device
        self.teacher = load_generator(str(losses.teacher), direction="sim->real", device=device)
        self.teacher.requires_grad_(False)
        # A student teacher with a camera blur (self-distillation, fine-tuning the shipped student)
        # already gives camera frames: blurring its output again would fit to a twice-blurred look.
        self.target_has_camera = self.check_run(model.config, losses) > 0
        # On the CPU the frozen teacher's forward is most of a step: ONNX Runtime runs it 2-3x faster.
        self.teach: Any = self.teacher
        if device.type == "cpu":
            from generators.runtime import OnnxRuntimeGenerator

            self.teach = OnnxRuntimeGenerator(self.teacher, threads=torch.get_num_threads()).translate
        self.features = EfficientNetLite0.pretrained().to(device)
        self.features._last = 4
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))
        self.disc: ProjectedDiscriminator | None = None
        self.opt_d: torch.optim.Optimizer | None = None
        self.rng = torch.Generator().manual_seed(seed + 11)
        if losses.lambda_adversarial > 0:
            self.disc = ProjectedDiscriminator(seed=seed).to(device)
            # One Adam per network with the run's lr and betas, as the teacher's trainer has.
            self.opt_d = torch.optim.Adam(self.disc.trainable_parameters(), lr=lr, betas=(beta1, 0.999))
        self.segmenter: nn.Module | None = None
        if losses.segmenter and losses.lambda_marking:  # only the marking loss reads it
            from generators.segmenter import load_segmenter

            self.segmenter = load_segmenter(losses.segmenter).to(device).eval().requires_grad_(False)
        # Running mean of the real batches' band moments and how many batches it holds (colour loss).
        self.real_moments: torch.Tensor | None = None
        self.real_batches = 0

    @staticmethod
    def check_run(model: Any, losses: DistillLosses) -> float:
        """The teacher's camera blur (0 if none), refused if it differs from the student's own.

        Called when the run config is read (before any data) and by the trainer.
        """
        from generators.checkpoint import read_config

        teacher = read_config(str(losses.teacher))
        blur = float(teacher.get("model", {}).get("camera_blur", 0.0) or 0.0) if teacher["method"] == "student" else 0.0
        if blur and blur != model.camera_blur:
            raise ConfigError(
                f"losses.teacher {losses.teacher} is a student with camera_blur {blur}; the student "
                f"being trained has {model.camera_blur}: give both the same camera"
            )
        return blur

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The student's optimiser (and the discriminator's, with ``lambda_adversarial``)."""
        return [self.opt] if self.opt_d is None else [self.opt, self.opt_d]

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """Fit the student to the teacher's translation of ``sim``."""
        self.model.train()
        with torch.no_grad():
            # The student's camera blur applies to what it is fitted to as well (identity without one),
            # unless the teacher is a student with that camera already.
            target = self.teach(sim)
            if not self.target_has_camera:
                target = self.model.camera(target)
        out = self.model(sim)
        w = self.losses
        zero = torch.zeros((), device=sim.device)
        logged: dict[str, float] = {}
        if self.disc is not None and self.opt_d is not None:
            freeze_for_generator_step(self.disc, False)
            loss_d = discriminator_loss(self.disc, real, out.detach(), True, self.rng)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            freeze_for_generator_step(self.disc, True)
            logged["d_loss"] = float(loss_d.detach())
        l1 = F.l1_loss(out, target)
        feature = zero
        if w.lambda_feature > 0:
            ours, theirs = self.features.features(out), self.features.features(target)
            feature = sum((F.l1_loss(ours[k], theirs[k].detach()) for k in ("block2", "block4")), zero)
        adversarial = generator_loss(self.disc, out, True, self.rng) if self.disc is not None else zero
        marking = zero
        if self.segmenter is not None and w.lambda_marking > 0:
            ignore = None
            with torch.no_grad():
                labels = self.segmenter(sim).argmax(1)
                if w.marking_sim_colours:
                    labels = refine_marking_labels((sim + 1.0) / 2.0, labels)
                if w.marking_red_core > 0:
                    ignore = marginal_red((sim + 1.0) / 2.0, labels, w.marking_red_core)
            marking = marking_color_loss(
                (out + 1.0) / 2.0,
                labels,
                false_yellow=w.marking_false_yellow,
                false_colour=w.marking_false_colour,
                no_red_weight=w.marking_no_red,
                ignore=ignore,
            )
        colour = self.colour_loss(out, real) if w.lambda_colour > 0 else zero
        loss = w.lambda_l1 * l1 + w.lambda_feature * feature + w.lambda_adversarial * adversarial
        loss = loss + w.lambda_marking * marking + w.lambda_colour * colour
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logged.update(
            g_total=float(loss.detach()),
            l1=float(l1.detach()),
            feature=float(feature.detach()),
            adversarial=float(adversarial.detach()),
            marking=float(marking.detach()),
        )
        if w.lambda_colour > 0:
            logged["colour"] = float(colour.detach())
        return logged

    def colour_loss(self, out: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """L1 between the student batch's band moments and the real frames' running mean, in Lab / 10.

        Why: the L1 and feature anchors copy the teacher's colour cast, and neither the ImageNet
        features of the discriminator nor KID see one (colour augmentation taught them to ignore
        it); the shipped students' road was darker and bluer than the real camera's
        (``image-metrics``' colour-cast table). The real side is a running mean over every real
        batch so far (kept in the trainer state, so a resumed run continues exactly).
        """
        from generators.color import band_moments

        bands = self.losses.colour_bands
        with torch.no_grad():
            batch = band_moments((real + 1.0) / 2.0, bands)
            self.real_batches += 1
            if self.real_moments is None:
                self.real_moments = batch
            else:
                self.real_moments = self.real_moments + (batch - self.real_moments) / self.real_batches
        return F.l1_loss(band_moments((out + 1.0) / 2.0, bands), self.real_moments) / 10.0

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns after the source: the teacher's translation, the student's."""
        self.model.eval()
        return [self.teach(source), self.model(source)]

    def state_dict(self) -> dict[str, Any]:
        """Optimisers, discriminator, augmentation stream (the teacher is frozen, named in the config)."""
        state: dict[str, Any] = {"opt": self.opt.state_dict()}
        if self.disc is not None and self.opt_d is not None:
            state.update(disc=self.disc.state_dict(), opt_d=self.opt_d.state_dict(), rng=self.rng.get_state())
        if self.real_moments is not None:
            state.update(real_moments=self.real_moments.clone(), real_batches=self.real_batches)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.opt.load_state_dict(state["opt"])
        if self.disc is not None and self.opt_d is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.rng.set_state(state["rng"])
        if "real_moments" in state:
            self.real_moments = state["real_moments"].clone()
            self.real_batches = int(state["real_batches"])
