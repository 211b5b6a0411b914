"""Everything needed to import and run ``gym_duckietown`` 6.1.34 on a current stack, in one place.

Upstream (PyPI ``duckietown-gym-daffy==6.1.34``) was written for numpy < 1.24 and a desktop with an
X server. Rather than editing site-packages, :func:`load_simulator` applies these contained fixes,
once, before anything else touches the simulator:

* **Headless.** ``pyglet.options["headless"] = True`` must be set before anything imports
  ``pyglet.window``; pyglet then renders through EGL (Mesa llvmpipe), no X server needed. The
  shared libraries are checked first so that a missing one is one clear error naming the Debian
  packages, not a ctypes traceback from deep inside pyglet.
* **numpy >= 1.24, dynamics.** ``pwm_dynamics.DynamicModel.integrate`` builds
  ``linear = [longitudinal, lateral]`` where ``longitudinal`` has shape ``(1,)``; numpy >= 1.24
  refuses the ragged array. The module's ``geo.se2_from_linear_angular`` is replaced (in that
  module only) by one that flattens its inputs to scalars.
* **numpy >= 1.24, randomizer.** ``Randomizer.randomize`` returns size-1 arrays for scalar
  settings, which reach ``gluPerspective``/``glRotatef``; they are turned into Python floats.
  ``trim`` stays a size-1 array because upstream indexes it.
* **Segmentation.** ``render_obs(segment=True)`` crashes with ``TypeError: unhashable type:
  'list'`` because ``load_texture`` is ``lru_cache``d and objects pass a list colour. The loader is
  wrapped so colours become tuples. Tile textures are re-bound to the segmented version of the
  *same* file (upstream picks a different random texture file, with an API that numpy's
  ``Generator`` lacks), and tiles that are not road segment to the background colour instead of
  the same black as asphalt, so road and off-road can be told apart.
* **Fisheye camera.** ``distortion=True`` applies the Duckiebot's calibrated fisheye model
  (``gym_duckietown.distortion.Distortion``: its camera matrix and radial/tangential coefficients,
  calibrated at 640x480) to every frame, but upstream builds the remap with that 640x480 camera
  matrix at whatever size the frame is, so at 160x120 the principal point (303, 232) lies outside
  the image and the frame is warped about its bottom-right corner. The intrinsics are scaled to
  the frame's size, and the distorted -> pinhole map is computed exactly with
  ``cv2.undistortPoints`` (upstream inverts the rectification map by splatting, which leaves
  unfilled pixels). RGB is resampled bilinearly, segmentation by nearest neighbour, so class ids
  stay class ids.
* **Noise.** Upstream prints ``pyglet.options`` on import and logs every spawn at INFO.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib
import io
import logging
import sys
import types
from functools import cache, lru_cache
from typing import Any

import numpy as np

from sim2real_env.errors import Sim2RealError
from sim2real_env.segmentation import BACKGROUND_RGB, DUCKIE_MESHES, DUCKIE_RGB, OTHER_OBJECT_RGB

#: Shared libraries the headless renderer needs, with the Debian package that provides each.
REQUIRED_LIBRARIES: dict[str, str] = {
    "EGL": "libegl1",
    "GL": "libgl1",
    "GLU": "libglu1-mesa",
    "glib-2.0": "libglib2.0-0",
    "freetype": "libfreetype6",
    "fontconfig": "libfontconfig1",
}


class MissingSystemLibraryError(Sim2RealError, RuntimeError):
    """Raised when the OpenGL/EGL libraries the headless simulator needs are not installed.

    A :class:`~sim2real_env.errors.Sim2RealError`, so the CLI prints it as one line (which packages
    to install) instead of a traceback.
    """


def check_system_libraries() -> None:
    """Fail with one message naming every missing library and its Debian package."""
    missing = {lib: pkg for lib, pkg in REQUIRED_LIBRARIES.items() if ctypes.util.find_library(lib) is None}
    if missing:
        libs = ", ".join(f"lib{lib} (Debian package {pkg})" for lib, pkg in missing.items())
        raise MissingSystemLibraryError(
            f"The headless Duckietown simulator needs shared libraries that are not installed: {libs}. "
            f"Install them with: apt-get install -y {' '.join(sorted(set(missing.values())))}"
        )


def _patch_dynamics() -> None:
    import geometry
    from duckietown_world.world_duckietown import pwm_dynamics

    def se2_from_linear_angular(linear: Any, angular: Any) -> np.ndarray:
        flat = np.array([float(np.asarray(v).reshape(-1)[0]) for v in linear], dtype=np.float64)
        return geometry.se2_from_linear_angular(flat, float(np.asarray(angular).reshape(-1)[0]))

    shim = types.SimpleNamespace(**{k: getattr(geometry, k) for k in dir(geometry) if not k.startswith("__")})
    shim.se2_from_linear_angular = se2_from_linear_angular
    pwm_dynamics.geo = shim


def _patch_randomizer() -> None:
    from gym_duckietown.randomization import randomizer

    original = randomizer.Randomizer.randomize
    scalar_keys = ("horz_mode", "camera_height", "camera_angle", "camera_fov_y")

    def randomize(self: Any, rng: Any) -> dict[str, Any]:
        settings: dict[str, Any] = original(self, rng)
        for key in scalar_keys:
            value = settings.get(key)
            if isinstance(value, np.ndarray) and value.size == 1:
                settings[key] = value.item()
        return settings

    randomizer.Randomizer.randomize = randomize


def _patch_textures() -> None:
    from gym_duckietown import graphics, objects, objmesh, simulator

    raw_loader = graphics.load_texture.__wrapped__
    path_of_texture_id: dict[int, str] = {}

    @cache
    def cached(tex_path: str, segment: bool, colour: Any) -> Any:
        return raw_loader(tex_path, segment, list(colour) if isinstance(colour, tuple) else colour)

    mesh_being_built: list[str] = []
    original_mesh_init = objmesh.ObjMesh.__init__

    def mesh_init(self: Any, file_path: str, mesh_name: str, *args: Any, **kwargs: Any) -> None:
        mesh_being_built.append(mesh_name)
        try:
            original_mesh_init(self, file_path, mesh_name, *args, **kwargs)
        finally:
            mesh_being_built.pop()

    def load_texture(tex_path: str, segment: bool = False, segment_into_color: Any = None) -> Any:
        colour = segment_into_color
        if segment and mesh_being_built and isinstance(colour, (list, tuple, np.ndarray)):
            colour = DUCKIE_RGB if mesh_being_built[-1] in DUCKIE_MESHES else OTHER_OBJECT_RGB
        if isinstance(colour, (list, np.ndarray)):
            colour = tuple(int(c) for c in colour)
        texture = cached(tex_path, bool(segment), colour)
        path_of_texture_id.setdefault(texture.id, tex_path)
        return texture

    def bind(self: Any, segment: bool = False) -> None:
        texture = self.tex
        if segment:
            path = path_of_texture_id.get(texture.id)
            if path is None:
                raise RuntimeError(f"no source file recorded for texture {self.tex_name!r}; cannot segment it")
            texture = load_texture(path, True, BACKGROUND_RGB)
        graphics.gl.glBindTexture(texture.target, texture.id)

    for module in (graphics, objects, objmesh, simulator):
        module.load_texture = load_texture
    graphics.Texture.bind = bind
    objmesh.ObjMesh.__init__ = mesh_init


#: Size the upstream camera calibration was made at (``Distortion.W``, ``Distortion.H``).
CALIBRATION_SIZE = (640, 480)


def fisheye_maps(camera_matrix: Any, new_camera_matrix: Any, coefficients: Any, height: int, width: int) -> Any:
    """``cv2.remap`` grids that render a ``height`` x ``width`` fisheye frame from the pinhole frame.

    Both camera matrices are the calibration's (at :data:`CALIBRATION_SIZE`) and are scaled to the
    frame. Each fisheye pixel is undistorted to its ray and projected with the pinhole frame's
    intrinsics (``new_camera_matrix``), the frame the simulator renders.
    """
    import cv2

    scale = np.diag([width / CALIBRATION_SIZE[0], height / CALIBRATION_SIZE[1], 1.0])
    k_fisheye = scale @ np.asarray(camera_matrix, dtype=np.float64)
    k_pinhole = scale @ np.asarray(new_camera_matrix, dtype=np.float64)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=-1)[:, None, :]
    rays = cv2.undistortPoints(pixels, k_fisheye, np.asarray(coefficients, dtype=np.float64)).reshape(height, width, 2)
    map_x = rays[..., 0] * k_pinhole[0, 0] + k_pinhole[0, 2]
    map_y = rays[..., 1] * k_pinhole[1, 1] + k_pinhole[1, 2]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def _patch_distortion() -> None:
    import cv2
    from gym_duckietown import simulator

    original_render_obs = simulator.Simulator.render_obs

    def render_obs(self: Any, segment: bool = False) -> np.ndarray:
        if not self.distortion or self.undistort:
            return original_render_obs(self, segment=segment)
        self.undistort = True  # upstream's own switch: render the pinhole frame, we distort it below
        try:
            pinhole = original_render_obs(self, segment=segment)
        finally:
            self.undistort = False
        model = self.camera_model
        size = pinhole.shape[:2]
        if getattr(model, "_sim2real_size", None) != size:
            model._sim2real_maps = fisheye_maps(
                model.camera_matrix, model.new_camera_matrix, model.distortion_coefs, *size
            )
            model._sim2real_size = size
        map_x, map_y = model._sim2real_maps
        interpolation = cv2.INTER_NEAREST if segment else cv2.INTER_LINEAR
        return cv2.remap(pinhole, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)

    simulator.Simulator.render_obs = render_obs


def _quiet_loggers() -> None:
    for name in ("gym-duckietown", "duckietown_world", "geometry", "zuper_commons", "contracts"):
        logging.getLogger(name).setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def load_simulator() -> types.ModuleType:
    """Import ``gym_duckietown.simulator`` headless with all fixes applied; idempotent.

    Returns the ``gym_duckietown.simulator`` module.
    """
    check_system_libraries()
    import pyglet

    if "pyglet.window" in sys.modules and not pyglet.options.get("headless"):
        raise RuntimeError(
            "pyglet.window was imported before the simulator with headless rendering off; "
            "import sim2real_env (or call sim2real_env._compat.load_simulator()) before anything "
            "that opens a pyglet window"
        )
    pyglet.options["headless"] = True
    pyglet.options["debug_gl"] = False
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    # Upstream prints pyglet.options, old gym prints an "unmaintained" banner, and a dependency
    # calls logging.basicConfig(level=DEBUG) on import: keep all of that out of the user's terminal.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        simulator = importlib.import_module("gym_duckietown.simulator")
    for handler in root.handlers[:]:
        if handler not in root_handlers:
            root.removeHandler(handler)
    root.setLevel(root_level)
    _quiet_loggers()
    _patch_dynamics()
    _patch_randomizer()
    _patch_textures()
    _patch_distortion()
    return simulator
