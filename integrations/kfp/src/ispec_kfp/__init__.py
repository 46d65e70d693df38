"""Kubeflow Pipelines components on images built once by ispec.

A KFP component names a ``base_image`` and ``packages_to_install``; KFP
then installs the packages when every step's container starts, in every
run. This helper turns those arguments into an ispec spec, builds the
image once through the ``ispec`` CLI (or an ``ispec serve`` with
``server=``), and gives the component ``ref@digest`` as its base image
with nothing left to install::

    from kfp import dsl
    import ispec_kfp

    @ispec_kfp.component(base_image="python:3.11-slim",
                         packages_to_install=["pandas==2.2.2"],
                         registry="ghcr.io/my-org")
    def preprocess(rows: int) -> int: ...

or, to keep ``dsl.component`` in sight::

    @dsl.component(**ispec_kfp.component_kwargs(base_image=..., packages_to_install=[...], registry=...))

The image is named by the hash of what it holds, so a second call (in
this process or any other, on any machine) finds it with one registry
request and builds nothing.
"""

from .core import (
    DEFAULT_BASE_IMAGE,
    BuildResult,
    IspecError,
    build,
    component,
    component_kwargs,
    spec_document,
)

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "BuildResult",
    "IspecError",
    "build",
    "component",
    "component_kwargs",
    "spec_document",
]
