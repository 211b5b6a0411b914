"""The name registries: generator methods, their trainers, agent algorithms, and the Registry itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim2real_env.errors import ConfigError
from sim2real_env.names import Registry

ROOT = Path(__file__).resolve().parent.parent


def test_registry_refuses_a_taken_name_and_suggests_the_nearest() -> None:
    things: Registry[object] = Registry("thing")

    @things.register("cyclegan")
    class First:
        pass

    things.register("cyclegan")(First)  # the same object again (a re-import) is harmless
    with pytest.raises(ValueError, match="thing 'cyclegan' is registered twice"):

        @things.register("cyclegan")
        class Second:
            pass

    assert things.lookup("cyclegan") is First
    assert list(things) == ["cyclegan"] and "cyclegan" in things and len(things) == 1
    with pytest.raises(ConfigError, match=r"Unknown thing 'cyclegn'\. Did you mean 'cyclegan'\?"):
        things.lookup("cyclegn")
    with pytest.raises(KeyError):
        things["cyclegn"]


def test_registry_imports_its_module_on_first_lookup_only() -> None:
    code = (
        "import sys\n"
        "from generators.registry import METHODS, TRAINERS\n"
        "assert 'generators.methods' not in sys.modules and 'generators.cyclegan.model' not in sys.modules\n"
        "assert 'cyclegan' in METHODS\n"
        "assert 'generators.methods' in sys.modules and 'generators.method_trainers' not in sys.modules\n"
        "TRAINERS.lookup('cyclegan')\n"
        "assert 'generators.method_trainers' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_shipped_method_has_a_trainer_and_a_config() -> None:
    from generators.registry import METHODS, TRAINERS, build_generator, method_class, trainer_class

    assert set(METHODS) == set(TRAINERS)
    assert {"cyclegan", "unit", "nst", "stn_unet", "identity", "color_transfer", "cut", "student"} <= set(METHODS)
    for name in METHODS:
        cls = method_class(name)
        assert cls.method == name
        assert hasattr(cls.config_class, "from_dict")
        trainer = trainer_class(name)
        assert trainer is trainer_class(cls)
        # ``optimizers`` may be an instance attribute (the baselines'); mypy checks the protocol statically.
        for member in ("train_step", "sample_columns", "state_dict", "load_state_dict"):
            assert hasattr(trainer, member), f"{name} trainer lacks {member}"
        assert hasattr(trainer.losses_class, "from_dict")
    with pytest.raises(ConfigError, match="Did you mean 'cyclegan'"):
        build_generator("cyclegn")
    with pytest.raises(ConfigError, match="Did you mean 'unit'"):
        trainer_class("unti")


def test_register_method_checks_the_class() -> None:
    from generators.registry import register_method, register_trainer

    class Nameless:
        method = "other"
        config_class = dict

    with pytest.raises(TypeError, match="method is 'other'"):
        register_method("mine")(Nameless)
    with pytest.raises(TypeError, match="no losses_class"):
        register_trainer("mine")(Nameless)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="registered twice"):
        from generators.cyclegan.model import CycleGAN

        register_method("cyclegan")(type("CycleGAN", (CycleGAN,), {}))


def test_agent_algorithms_dispatch_by_name() -> None:
    from agents.algorithms import ALGORITHMS, register_algorithm
    from agents.saved import ALGOS

    assert list(ALGORITHMS) == ["ppo", "bc"] and ALGOS == ("ppo", "bc")
    with pytest.raises(ConfigError, match="Unknown agent algorithm 'ppoo'. Did you mean 'ppo'"):
        ALGORITHMS.lookup("ppoo")
    with pytest.raises(ValueError, match="registered twice"):

        @register_algorithm("bc")
        class AnotherBC:
            pass

    assert ALGORITHMS.lookup("bc").config({}).__class__.__name__ == "BCConfig"
    with pytest.raises(ConfigError, match="--resume is for PPO"):
        ALGORITHMS.lookup("bc").train(None, None, Path("unused"), resume=True, progress=False)  # type: ignore[arg-type]


def test_wrappers_carry_their_direction() -> None:
    from sim2real_env import vector, wrappers

    assert wrappers.Sim2RealObservation.direction == "sim->real"
    assert wrappers.CanonicalizeObservation.direction == "real->canonical"
    assert vector.Sim2RealVectorObservation.direction == vector.Sim2RealVecEnv.direction == "sim->real"
    assert vector.CanonicalizeVectorObservation.direction == vector.CanonicalizeVecEnv.direction == "real->canonical"
