"""flytekit image builder plugin: ``ImageSpec(builder="ispec", ...)`` builds
through the ispec CLI (or, when ISPEC_SERVER is set, the ispec service the
CLI talks to).

flytekit imports this module through the ``flytekit.plugins`` entry point,
which registers the builder as "ispec" at PRIORITY, below flytekit's
default builder (1): an ImageSpec that names no builder keeps flytekit's.
With ISPEC_FLYTEKIT_DEFAULT_BUILDER=true (set before flytekit is imported)
it registers at DEFAULT_PRIORITY instead, above flytekit's builders and
envd's (5), and builds every ImageSpec that names no builder.
"""

from flytekit.image_spec.image_spec import ImageBuildEngine

from .builder import IspecError, IspecImageSpecBuilder, flytekit_requirement, spec_document
from .builder import _env_bool

__all__ = ["IspecError", "IspecImageSpecBuilder", "flytekit_requirement", "spec_document", "priority"]

#: Makes ispec the builder of ImageSpecs that name none.
DEFAULT_BUILDER_ENV = "ISPEC_FLYTEKIT_DEFAULT_BUILDER"
#: The builder's priority: below flytekit's default builder (1).
PRIORITY = 0
#: The priority with DEFAULT_BUILDER_ENV set: above flytekit's (1) and envd's (5).
DEFAULT_PRIORITY = 10


def priority() -> int:
    """The priority the builder registers at (see DEFAULT_BUILDER_ENV)."""
    return DEFAULT_PRIORITY if _env_bool(DEFAULT_BUILDER_ENV, False) else PRIORITY


ImageBuildEngine.register("ispec", IspecImageSpecBuilder(), priority=priority())
