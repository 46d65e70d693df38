"""Stand-in for flytekit.image_spec.default_builder (flytekit 1.16.24):
the builder flytekit registers as "default", which builds with Docker. It
inherits ImageSpecBuilder.should_build; the stand-in cannot build."""

import re

from .image_spec import ImageSpec, ImageSpecBuilder

_PACKAGE_NAME_RE = re.compile(r"^[\w-]+")


def get_flytekit_for_pypi():
    """The flytekit requirement flytekit's builder adds when a spec names
    none: the running flytekit's version, unpinned for a dev version."""
    from flytekit import __version__

    if not __version__ or "dev" in __version__:
        return "flytekit"
    return f"flytekit=={__version__}"


def _is_flytekit(package: str) -> bool:
    m = _PACKAGE_NAME_RE.match(package)
    if not m:
        return False
    return m.group() == "flytekit"


class DefaultImageBuilder(ImageSpecBuilder):
    builder_type = "default"

    def build_image(self, image_spec: ImageSpec) -> str:
        raise NotImplementedError("the stand-in's default builder has no Docker to build with")
