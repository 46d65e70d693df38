"""A minimal stand-in for flytekit, for the plugin's tests only.

flytekit cannot be installed where these tests run (no Python package
index), so this package models the parts of flytekit 1.16.24 that an image
builder plugin meets, following flytekit's source at that version (file by
file, with the same names and the same control flow; see each module):

- ``flytekit/__init__.py``: ``__version__``, ``ImageSpec``, and
  ``load_implicit_plugins()``, which loads every ``flytekit.plugins`` entry
  point when ``flytekit`` is imported (how ``pyflyte`` loads the plugin).
- ``flytekit/image_spec``: ``ImageSpec``, ``ImageSpecBuilder``,
  ``ImageBuildEngine``, and the default (priority 1) and noop (priority 0)
  builders registered at import.
- ``flytekit/configuration``: ``Image`` and ``ImageConfig`` (what
  ``pyflyte register --image NAME=IMAGE`` builds).
- ``flytekit/core/python_auto_container.py``:
  ``get_registerable_container_image``, the function serialization calls to
  turn a task's ``container_image`` into the image string Flyte runs.

It is not flytekit: no execution contexts (every call is a registration,
never an execution), no Docker (``ImageSpec.exist()`` answers None, as
flytekit's does without a Docker daemon for a registry other than Docker
Hub), and the digests flytekit's tag takes of ``source_root`` and ``copy``
are simpler walks of the same files.
"""

from importlib.metadata import entry_points

__version__ = "1.16.24"

from flytekit.image_spec import ImageSpec  # noqa: E402


def load_implicit_plugins():
    """Load every ``flytekit.plugins`` entry point, as flytekit does at
    import."""
    for p in entry_points(group="flytekit.plugins"):
        p.load()


load_implicit_plugins()

__all__ = ["ImageSpec", "__version__", "load_implicit_plugins"]
