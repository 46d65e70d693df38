"""flytekit image builder plugin: ``ImageSpec(builder="ispec", ...)`` builds
through the ispec CLI (or, when ISPEC_SERVER is set, the ispec service the
CLI talks to).

flytekit imports this module through the ``flytekit.plugins`` entry point,
which registers the builder.
"""

from flytekit.image_spec.image_spec import ImageBuildEngine

from .builder import IspecError, IspecImageSpecBuilder, spec_document

__all__ = ["IspecError", "IspecImageSpecBuilder", "spec_document"]

ImageBuildEngine.register("ispec", IspecImageSpecBuilder())
