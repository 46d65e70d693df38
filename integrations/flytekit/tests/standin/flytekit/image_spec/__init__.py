"""Stand-in for flytekit.image_spec (flytekit 1.16.24): the default builder
at priority 1 and the noop builder at priority 0, registered at import."""

from .default_builder import DefaultImageBuilder
from .image_spec import ImageBuildEngine, ImageSpec, ImageSpecBuilder
from .noop_builder import NoOpBuilder

ImageBuildEngine.register(DefaultImageBuilder.builder_type, DefaultImageBuilder(), priority=1)
ImageBuildEngine.register(NoOpBuilder.builder_type, NoOpBuilder(), priority=0)

__all__ = ["ImageBuildEngine", "ImageSpec", "ImageSpecBuilder"]
