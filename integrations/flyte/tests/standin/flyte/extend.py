"""Stand-in of flyte.extend: what plugins import."""

from ._image import Architecture
from ._internal.imagebuild.image_builder import ImageBuildEngine, ImageBuilder, ImageChecker

__all__ = ["Architecture", "ImageBuildEngine", "ImageBuilder", "ImageChecker"]
