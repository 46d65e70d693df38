"""Flyte 2 (flyte-sdk) image builder plugin: ``flyte.Image`` layers built
by ispec, each image once, named by its content.

flyte-sdk loads it from the ``flyte.plugins.image_builders`` entry point
named ``ispec``: ``flyte.init(image_builder="ispec")`` (or ``image:
builder: ispec`` in flyte's config) builds every image through the ispec
CLI, or through an ``ispec serve`` when ISPEC_SERVER is set. Each layer of
the image becomes one item of an ispec spec's ``layers:`` (see
ispec_flyte.mapping), so a change to a light layer never rebuilds a heavy
one before it.
"""

from .builder import IspecImageBuilder, IspecImageChecker, Lookup
from .errors import IspecError
from .mapping import Mapping, spec_document

__all__ = ["IspecError", "IspecImageBuilder", "IspecImageChecker", "Lookup", "Mapping", "spec_document"]
