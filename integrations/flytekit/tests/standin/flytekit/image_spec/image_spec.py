"""Stand-in for flytekit.image_spec.image_spec, modelled on flytekit 1.16.24
(flytekit/image_spec/image_spec.py): ImageSpec, ImageSpecBuilder and
ImageBuildEngine with flytekit's fields, defaults and control flow.

What a builder plugin depends on, as flytekit does it:

- ``ImageSpec.__post_init__`` picks the builder of a spec that names none
  when the spec is made: the registered builder of highest priority.
- ``ImageSpec.image_name()`` is ``[registry/]name:tag``, looked up in
  ``ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME``: the name a builder
  returned, when there is one.
- ``ImageBuildEngine.build`` (cached per spec in a process) computes that
  name first, asks the builder's ``should_build``, and only when it is true
  calls ``build_image`` and records the name it returns. A builder whose
  ``should_build`` is false leaves flytekit's own name in place.
- ``ImageSpecBuilder.should_build`` (the default builder's) asks
  ``ImageSpec.exist()``; None (the registry could not be asked) means
  "assume it exists" unless FLYTE_IMG_FAST_FAIL is set.

Left out: execution contexts (``build`` returns early inside a task
execution in flytekit), Docker (``exist()`` answers None), and the ignore
rules of flytekit's ``ls_files`` (the tag's source digest here walks every
file of ``source_root``).
"""

import base64
import copy
import dataclasses
import hashlib
import os
import pathlib
import platform
import re
import sys
import typing
from abc import abstractmethod
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from typing import Any, Dict, List, Optional, Tuple, Union

from flytekit.constants import CopyFileDetection

_F_IMG_ID = "_F_IMG_ID"
FLYTE_FORCE_PUSH_IMAGE_SPEC = "FLYTE_FORCE_PUSH_IMAGE_SPEC"
FLYTE_IMG_FAST_FAIL = "FLYTE_IMG_FAST_FAIL"


def _str2bool(s: str) -> bool:
    # flytekit.clis.helpers.str2bool
    return s.lower() not in ["false", "0", "off", "no"]


def _secho(msg: str) -> None:
    # click.secho in flytekit
    print(msg, file=sys.stderr)


@dataclass
class ImageSpec:
    name: str = "flytekit"
    python_version: str = None
    builder: Optional[str] = None
    source_root: Optional[str] = None
    env: Optional[Dict[str, str]] = None
    registry: Optional[str] = None
    packages: Optional[List[str]] = None
    conda_packages: Optional[List[str]] = None
    conda_channels: Optional[List[str]] = None
    requirements: Optional[str] = None
    apt_packages: Optional[List[str]] = None
    cuda: Optional[str] = None
    cudnn: Optional[str] = None
    base_image: Optional[Union[str, "ImageSpec"]] = None
    platform: Optional[str] = None
    pip_index: Optional[str] = None
    pip_extra_index_url: Optional[List[str]] = None
    pip_secret_mounts: Optional[List[Tuple[str, str]]] = None
    pip_extra_args: Optional[str] = None
    registry_config: Optional[str] = None
    entrypoint: Optional[List[str]] = None
    commands: Optional[List[str]] = None
    tag_format: Optional[str] = None
    source_copy_mode: Optional[CopyFileDetection] = None
    copy: Optional[List[str]] = None
    python_exec: Optional[str] = None
    runtime_packages: Optional[List[str]] = None
    builder_options: Optional[Dict[str, Any]] = None
    builder_config: Optional[typing.Dict[str, typing.Any]] = None

    def __post_init__(self):
        self.name = self.name.lower()
        self._is_force_push = _str2bool(os.environ.get(FLYTE_FORCE_PUSH_IMAGE_SPEC, "FALSE"))
        self._fast_fail = _str2bool(os.environ.get(FLYTE_IMG_FAST_FAIL, "FALSE"))
        if self.registry:
            self.registry = self.registry.lower()
            if not validate_container_registry_name(self.registry):
                raise ValueError(f"Invalid container registry name: '{self.registry}'.")

        if self.platform is None:
            if (
                self.registry
                and self.registry.lower().startswith("localhost:")
                and platform.machine().lower() in ("arm64", "aarch64")
            ):
                self.platform = "linux/arm64"
            else:
                self.platform = "linux/amd64"

        if self.source_root is not None:
            self.source_copy_mode = self.source_copy_mode or CopyFileDetection.LOADED_MODULES

        builder_registry = ImageBuildEngine.get_registry()
        if self.builder is None and builder_registry:
            # Use the builder with the highest priority by default
            self.builder = max(builder_registry, key=lambda name: builder_registry[name][1])

        for parameter in [
            "packages",
            "conda_channels",
            "conda_packages",
            "apt_packages",
            "pip_extra_index_url",
            "entrypoint",
            "commands",
            "runtime_packages",
        ]:
            attr = getattr(self, parameter)
            if not (attr is None or (isinstance(attr, list) and all(isinstance(v, str) for v in attr))):
                raise ValueError(f"{parameter} must be a list of strings or None")

        if self.pip_secret_mounts is not None:
            ok = isinstance(self.pip_secret_mounts, list) and all(
                isinstance(v, tuple) and len(v) == 2 and all(isinstance(vv, str) for vv in v)
                for v in self.pip_secret_mounts
            )
            if not ok:
                raise ValueError("pip_secret_mounts must be a list of tuples of two strings or None")

        if self.builder_options is not None and not isinstance(self.builder_options, dict):
            raise ValueError("builder_options must be a dictionary or None")

    @cached_property
    def id(self) -> str:
        parameters_to_exclude = ["pip_secret_mounts", "builder", "runtime_packages"]
        image_spec_dict = asdict(
            self, dict_factory=lambda x: {k: v for (k, v) in x if v is not None and k not in parameters_to_exclude}
        )
        image_spec_bytes = image_spec_dict.__str__().encode("utf-8")
        return base64.urlsafe_b64encode(hashlib.md5(image_spec_bytes).digest()).decode("ascii").rstrip("=")

    def __hash__(self):
        return hash(self.id)

    @cached_property
    def tag(self) -> str:
        spec = copy.deepcopy(self)
        if isinstance(spec.base_image, ImageSpec):
            spec = dataclasses.replace(spec, base_image=spec.base_image.image_name())

        if self.source_copy_mode is not None and self.source_copy_mode != CopyFileDetection.NO_COPY:
            if not self.source_root:
                raise ValueError(f"Field source_root for image spec {self.name} must be set when copy is set")
            # flytekit: ls_files(source_root, source_copy_mode, ignore_group=...)
            spec = dataclasses.replace(spec, source_root=_walk_digest([str(self.source_root)]))

        if self.copy:
            # flytekit: flytekit.tools.fast_registration.compute_digest(self.copy)
            spec = dataclasses.replace(spec, copy=_walk_digest(self.copy))

        if spec.requirements:
            requirements = hashlib.sha1(pathlib.Path(spec.requirements).read_bytes().strip()).hexdigest()
            spec = dataclasses.replace(spec, requirements=requirements)

        spec = dataclasses.replace(spec, registry_config=None)
        tag = spec.id.replace("-", "_")
        if self.tag_format:
            return self.tag_format.format(spec_hash=tag)
        return tag

    def image_name(self) -> str:
        """Full image name with tag."""
        image_name = f"{self.name}:{self.tag}"
        if self.registry:
            image_name = f"{self.registry}/{image_name}"
        try:
            return ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME[image_name]
        except KeyError:
            return image_name

    def is_container(self) -> bool:
        # flytekit compares only inside a task execution (not a local one).
        return os.environ.get(_F_IMG_ID) == self.id

    def exist(self) -> Optional[bool]:
        # flytekit asks Docker (or Docker Hub's API); without a Docker daemon
        # and for another registry it prints the error and answers None.
        return None

    def force_push(self) -> "ImageSpec":
        copied_image_spec = copy.deepcopy(self)
        copied_image_spec._is_force_push = True
        return copied_image_spec


def _walk_digest(sources: List[str]) -> str:
    """md5 of every file's path and bytes under sources (compute_digest's
    shape, without its filters)."""
    h = hashlib.md5()

    def add(p: str, rel: str) -> None:
        if os.path.isfile(p):
            h.update(pathlib.Path(p).read_bytes())
            h.update(rel.encode())

    for src in sources:
        if os.path.isdir(src):
            for root, dirs, files in os.walk(src):
                dirs.sort()
                for f in sorted(files):
                    p = os.path.join(root, f)
                    add(p, os.path.relpath(p, src))
        else:
            add(src, os.path.basename(src))
    return h.hexdigest()


class ImageSpecBuilder:
    @abstractmethod
    def build_image(self, image_spec: ImageSpec) -> Optional[str]:
        """Build and push the image; return its fully qualified name, or
        None for image_spec.image_name()."""
        raise NotImplementedError("This method is not implemented in the base class.")

    def should_build(self, image_spec: ImageSpec) -> bool:
        img_name = image_spec.image_name()
        exist = image_spec.exist()
        if exist is False:
            _secho(f"Image {img_name} not found. building...")
            return True
        elif exist is True:
            if image_spec._is_force_push:
                _secho(f"Overwriting existing image {img_name}.")
                return True
            _secho(f"Image {img_name} found. Skip building.")
        else:
            if image_spec._fast_fail:
                raise RuntimeError("Build failed as ImageSpec failed to check if the image exists")
            _secho(f"Flytekit assumes the image {img_name} already exists.")
        return False


class ImageBuildEngine:
    _REGISTRY: typing.Dict[str, Tuple[ImageSpecBuilder, int]] = {}
    # The fully qualified name a builder returned, by image_spec.image_name().
    _IMAGE_NAME_TO_REAL_NAME: Dict[str, str] = {}

    @classmethod
    def register(cls, builder_type: str, image_spec_builder: ImageSpecBuilder, priority: int = 5):
        cls._REGISTRY[builder_type] = (image_spec_builder, priority)

    @classmethod
    def get_registry(cls) -> Dict[str, Tuple[ImageSpecBuilder, int]]:
        return cls._REGISTRY

    @classmethod
    @lru_cache
    def build(cls, image_spec: ImageSpec):
        # flytekit returns here inside a task execution.
        spec = copy.deepcopy(image_spec)

        if isinstance(spec.base_image, ImageSpec):
            cls.build(spec.base_image)
            spec.base_image = spec.base_image.image_name()

        img_name = spec.image_name()
        img_builder = cls._get_builder(spec.builder)
        if img_builder.should_build(spec):
            fully_qualified_image_name = img_builder.build_image(spec)
            if fully_qualified_image_name is not None:
                cls._IMAGE_NAME_TO_REAL_NAME[img_name] = fully_qualified_image_name

    @classmethod
    def _get_builder(cls, builder: str) -> ImageSpecBuilder:
        if builder is None:
            raise AssertionError("There is no image builder registered.")
        if builder not in cls._REGISTRY:
            raise AssertionError(f"Image builder {builder} is not registered.")
        return cls._REGISTRY[builder][0]


def validate_container_registry_name(name: str) -> bool:
    registry_pattern = r"^(localhost:\d{1,5}|([a-z\d\._-]+)(:\d{1,5})?)(/[\w\.-]+)*$"
    return bool(re.match(registry_pattern, name))
