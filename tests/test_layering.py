"""The import layering (issue 15): which package may import which, checked by walking the source.

Layers, bottom to top::

    generators.protocol      the Generator interface (numpy + torch only)
    sim2real_env             simulator env, wrappers, domains, and the gym-free utilities
                             (names, checks, errors, provenance, video, frames, signals, ...)
    generators               models, training, metrics: built on sim2real_env's gym-free modules
    agents                   pipelines, expert, BC, PPO, evaluation
    benchmarks               runnable benchmarks
    sim2real_env.cli         the command line: imports any layer, inside its command functions

Every module of the four packages is parsed with ``ast``; its imports are split into
*module-level* ones (run when the module is imported: top level, class bodies, ``try``/``if``
blocks, but not ``if TYPE_CHECKING:``) and *function-level* ones (inside a function or lambda,
run only when called). Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so the
transitive closure includes parent packages.

Enforced:

* ``generators``, at module level and transitively, reaches no gym-like package (``gym``,
  ``gymnasium``, ``gym_duckietown``, ``stable_baselines3``) and no ``agents``/``benchmarks`` module.
  At function level, a generators module imports ``agents``/``benchmarks``/gym only where listed
  in :data:`KNOWN_LAZY`, each with its reason (and the list may not go stale).
* ``sim2real_env`` never imports ``agents`` or ``benchmarks`` (at any level), and imports
  ``generators`` at module level only for :data:`INTERFACE` (the protocol); loading a checkpoint
  inside a function (``make_env``) is allowed.
* No cycle between packages and no cycle between modules, through module-level imports.
* In a fresh interpreter ``import generators.checkpoint`` (and ``import sim2real_env``) leave
  gym and gymnasium out of ``sys.modules``.
* ``sim2real/Duckietown-v0`` is registered by ``import gymnasium, sim2real_env`` and by every
  sim2real_env module that imports Gymnasium, also when ``sim2real_env`` itself was first
  imported gym-free (Gymnasium 1.x has no plugin entry points, so it cannot be registered
  before anything of ours is imported).

Not checked: imports made by string (``importlib.import_module``, the module a registry imports
on its first lookup, Gymnasium entry-point strings) and the order of layers *inside* a package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sim2real_env", "generators", "agents", "benchmarks")
#: Third-party packages that mean "this imports a gym": generators must stay clear of them.
GYM_LIKE = ("gym", "gymnasium", "gym_duckietown", "stable_baselines3")
#: The CLI sits on top of every layer although it lives in sim2real_env (its console-script path
#: ``sim2real_env.cli:main`` is public); it imports the other layers only inside its command
#: functions, so importing sim2real_env never loads them.
CLI = "sim2real_env.cli"
#: Modules of ``generators`` that the layer below may import at module level: the interface.
INTERFACE = frozenset({"generators", "generators.protocol"})
#: Function-level imports from ``generators`` that break the layering and are known, with why.
#: New ones fail the test; an entry whose import is gone fails it too, so the list only shrinks.
KNOWN_LAZY: dict[tuple[str, str], str] = {}
#: Modules that register ``sim2real/Duckietown-v0`` when imported (see ``sim2real_env/__init__``).
REGISTERING = frozenset({"sim2real_env.env", "sim2real_env.wrappers"})


@dataclass
class Module:
    """One source module and the project modules / third-party packages it imports."""

    name: str
    path: Path
    is_package: bool
    module_level: set[str] = field(default_factory=set)
    function_level: set[str] = field(default_factory=set)


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def modules() -> dict[str, Module]:
    """Every module of :data:`PACKAGES` with its imports resolved to module names."""
    found: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name, is_package = _module_name(path)
            found[name] = Module(name, path, is_package)
    for module in found.values():
        tree = ast.parse(module.path.read_text(), filename=str(module.path))
        _collect(tree, module, found, in_function=False)
    return found


def _resolve(target: str, known: dict[str, Module]) -> str:
    """A project module name for ``target`` (its longest known prefix), else its top-level package."""
    parts = target.split(".")
    if parts[0] not in PACKAGES:
        return parts[0]
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return parts[0]


def _collect(node: ast.AST, module: Module, known: dict[str, Module], in_function: bool) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:  # the ``else`` of ``if TYPE_CHECKING`` does run
                _collect(sub, module, known, in_function)
            continue
        targets: list[str] = []
        if isinstance(child, ast.Import):
            targets = [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                package = module.name if module.is_package else module.name.rpartition(".")[0]
                for _ in range(child.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [base]
            # ``from pkg import sub``: sub may itself be a module.
            targets += [f"{base}.{alias.name}" for alias in child.names if f"{base}.{alias.name}" in known]
        for target in targets:
            resolved = _resolve(target, known)
            if resolved != module.name:
                (module.function_level if in_function else module.module_level).add(resolved)
        nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        _collect(child, module, known, nested)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


@cache
def loaded_by(name: str) -> frozenset[str]:
    """Everything ``import name`` runs at module level: project modules and third-party packages."""
    known = modules()
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in known:
            stack.extend(_parents(current))
            stack.extend(known[current].module_level)
    seen.discard(name)
    return frozenset(seen)


def package_of(name: str) -> str:
    return "interface" if name in INTERFACE - {"generators"} else name.split(".")[0]


def _in(package: str) -> list[Module]:
    return [m for m in modules().values() if m.name == package or m.name.startswith(package + ".")]


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def _format(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"  {a} -> {b}" for a, b in sorted(pairs))


# -- the walker itself ---------------------------------------------------------------------
def test_walker_sees_module_and_function_level_imports() -> None:
    """Guard against a walker that sees nothing (and so passes everything)."""
    known = modules()
    assert len(known) > 50
    assert "sim2real_env.names" in known["generators.registry"].module_level
    assert "generators.checkpoint" in known["sim2real_env.make"].function_level
    assert "gymnasium" in known["sim2real_env.env"].module_level
    # ``from sim2real_env import _compat`` is an import of the submodule.
    assert "sim2real_env._compat" in known["sim2real_env.env"].module_level
    # ``if TYPE_CHECKING:`` imports do not run.
    assert "generators.checkpoint" not in known["generators"].module_level


# -- generators: no gym, no agents -----------------------------------------------------------
def test_generators_never_load_gym_or_agents_at_import() -> None:
    bad = []
    for module in _in("generators"):
        for target in loaded_by(module.name):
            if target in GYM_LIKE or package_of(target) in ("agents", "benchmarks") or target == CLI:
                bad.append((module.name, target))
    assert not bad, f"importing these generators modules loads a gym or an upper layer:\n{_format(bad)}"


def test_generators_function_level_imports_are_known() -> None:
    found = set()
    for module in _in("generators"):
        for target in module.function_level:
            reaches_gym = target in GYM_LIKE or any(t in GYM_LIKE for t in loaded_by(target))
            if package_of(target) in ("agents", "benchmarks") or target == CLI or reaches_gym:
                found.add((module.name, target))
    new = found - set(KNOWN_LAZY)
    gone = set(KNOWN_LAZY) - found
    assert not new, f"new function-level imports of gym or upper layers from generators:\n{_format(new)}"
    assert not gone, f"fixed, so remove them from KNOWN_LAZY:\n{_format(gone)}"


# -- sim2real_env: never agents/benchmarks, generators only through the interface --------------
def test_sim2real_env_never_imports_agents_or_benchmarks() -> None:
    bad = [
        (module.name, target)
        for module in _in("sim2real_env")
        if module.name != CLI
        for target in module.module_level | module.function_level
        if package_of(target) in ("agents", "benchmarks")
    ]
    assert not bad, f"sim2real_env imports an upper layer:\n{_format(bad)}"


def test_sim2real_env_imports_generators_only_through_the_interface_at_module_level() -> None:
    bad = [
        (module.name, target)
        for module in _in("sim2real_env")
        if module.name != CLI
        for target in loaded_by(module.name)
        if package_of(target) == "generators" and target not in INTERFACE
    ]
    assert not bad, f"importing these sim2real_env modules loads generators' implementations:\n{_format(bad)}"


def test_cli_imports_upper_layers_only_inside_functions() -> None:
    cli = modules()[CLI]
    bad = [(CLI, t) for t in cli.module_level if package_of(t) in ("generators", "agents", "benchmarks")]
    assert not bad, f"the CLI must import other layers inside its command functions:\n{_format(bad)}"


def test_every_gymnasium_module_of_sim2real_env_registers_the_env() -> None:
    """``from generators... import ...; import gymnasium; from sim2real_env.X import ...`` then ``make``."""
    bad = [
        module.name
        for module in _in("sim2real_env")
        if "gymnasium" in module.module_level
        and module.name not in REGISTERING
        and not REGISTERING & loaded_by(module.name)
    ]
    assert not bad, f"these import Gymnasium but leave sim2real/Duckietown-v0 unregistered: {bad}"


def test_every_user_of_the_env_id_registers_it() -> None:
    """``gym.make(ENV_ID)`` anywhere needs a registering module loaded: ``from sim2real_env.env import ENV_ID``."""
    bad = [
        module.name
        for module in modules().values()
        if module.name not in ("sim2real_env", CLI, *REGISTERING)
        and "ENV_ID" in module.path.read_text()
        and not REGISTERING & loaded_by(module.name)
    ]
    assert not bad, f"these use ENV_ID without loading a module that registers it: {bad}"


# -- no cycles -------------------------------------------------------------------------------
def test_no_cycle_between_packages_at_module_level() -> None:
    graph: dict[str, set[str]] = {}
    for module in modules().values():
        if module.name == CLI:
            continue
        source = package_of(module.name)
        for target in module.module_level:
            if target in modules() and package_of(target) != source:
                graph.setdefault(source, set()).add(package_of(target))
    assert _find_cycle(graph) is None, f"package cycle: {' -> '.join(_find_cycle(graph) or [])}"


def test_no_cycle_between_modules_at_module_level() -> None:
    graph = {m.name: {t for t in m.module_level if t in modules()} for m in modules().values()}
    cycle = _find_cycle(graph)
    assert cycle is None, f"module-level import cycle: {' -> '.join(cycle or [])}"


# -- in a real interpreter -------------------------------------------------------------------
def _python(code: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_generators_checkpoint_imports_no_gym() -> None:
    out = _python(
        "import sys, generators.checkpoint, generators.registry, sim2real_env; "
        "print(sorted(m for m in ('gym', 'gymnasium', 'gym_duckietown', 'stable_baselines3') if m in sys.modules))"
    )
    assert out == "[]"


@pytest.mark.parametrize(
    "imports",
    [
        "import gymnasium, sim2real_env",  # the README's order
        "import sim2real_env.env, gymnasium",  # the env's own module registers it
        "import generators.checkpoint, gymnasium, sim2real_env.make",  # sim2real_env first loaded gym-free
        "import generators.checkpoint, gymnasium, sim2real_env.wrappers",
    ],
)
def test_env_id_is_registered(imports: str, tmp_path: Path) -> None:
    # From another folder: registration must not depend on the working directory.
    out = _python(f"{imports}\nimport gymnasium as g, sim2real_env as s; print(s.ENV_ID in g.registry)", cwd=tmp_path)
    assert out == "True"
