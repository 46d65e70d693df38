"""Stand-in for flytekit.image_spec (see the package's docstring)."""

from .image_spec import ImageBuildEngine, ImageSpec, ImageSpecBuilder

__all__ = ["ImageBuildEngine", "ImageSpec", "ImageSpecBuilder"]
