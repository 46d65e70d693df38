"""A stand-in of flyte-sdk 2.6.5 (the ``flyte`` package): only what an
image builder plugin touches (flyte.Image and its layers, flyte.Secret,
flyte.build, flyte.init's image builder, ImageBuildEngine with its
checkers and the ``flyte.plugins.image_builders`` entry points), written
from flyte-sdk's published source (src/flyte/_image.py,
src/flyte/_internal/imagebuild/image_builder.py, src/flyte/_build.py).
flyte-sdk itself cannot be installed here."""

from ._build import ImageBuild, build
from ._image import Image
from ._initialize import init
from ._secret import Secret
from ._version import __version__

__all__ = ["Image", "ImageBuild", "Secret", "__version__", "build", "init"]
