"""Stand-in for flytekit.image_spec.image_spec: ImageSpec, ImageSpecBuilder
and ImageBuildEngine as flytekit defines them, reduced to what a builder
plugin sees."""

import base64
import copy
import dataclasses
import hashlib
import os
import typing
from abc import abstractmethod
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple, Union

_F_IMG_ID = "_F_IMG_ID"


@dataclass
class ImageSpec:
    name: str = "flytekit"
    python_version: Optional[str] = None
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
    platform: str = "linux/amd64"
    pip_index: Optional[str] = None
    pip_extra_index_url: Optional[List[str]] = None
    pip_secret_mounts: Optional[List[Tuple[str, str]]] = None
    pip_extra_args: Optional[str] = None
    registry_config: Optional[str] = None
    entrypoint: Optional[List[str]] = None
    commands: Optional[List[str]] = None
    tag_format: Optional[str] = None
    source_copy_mode: Optional[str] = None
    copy: Optional[List[str]] = None
    python_exec: Optional[str] = None

    def __post_init__(self):
        self.name = self.name.lower()
        self._is_force_push = os.environ.get("FLYTE_FORCE_PUSH_IMAGE_SPEC", False)
        if self.registry:
            self.registry = self.registry.lower()

    @property
    def id(self) -> str:
        exclude = ["pip_secret_mounts"]
        d = asdict(self, dict_factory=lambda x: {k: v for (k, v) in x if v is not None and k not in exclude})
        return base64.urlsafe_b64encode(hashlib.md5(d.__str__().encode("utf-8")).digest()).decode("ascii").rstrip("=")

    def image_name(self) -> str:
        name = f"{self.name}:{self.id.replace('-', '_')}"
        if self.registry:
            name = f"{self.registry}/{name}"
        return ImageBuildEngine._IMAGE_NAME_TO_REAL_NAME.get(name, name)

    def is_container(self) -> bool:
        # flytekit checks this only inside a task's execution.
        return os.environ.get(_F_IMG_ID) == self.id

    def force_push(self) -> "ImageSpec":
        c = copy.deepcopy(self)
        c._is_force_push = True
        return c


class ImageSpecBuilder:
    @abstractmethod
    def build_image(self, image_spec: ImageSpec) -> Optional[str]:
        raise NotImplementedError

    def should_build(self, image_spec: ImageSpec) -> bool:
        raise NotImplementedError("the stand-in has no registry check of its own")


class ImageBuildEngine:
    _REGISTRY: typing.Dict[str, Tuple[ImageSpecBuilder, int]] = {}
    _IMAGE_NAME_TO_REAL_NAME: Dict[str, str] = {}

    @classmethod
    def register(cls, builder_type: str, image_spec_builder: ImageSpecBuilder, priority: int = 5):
        cls._REGISTRY[builder_type] = (image_spec_builder, priority)

    @classmethod
    def build(cls, image_spec: ImageSpec):
        spec = copy.deepcopy(image_spec)
        if isinstance(spec.base_image, ImageSpec):
            cls.build(spec.base_image)
            spec = dataclasses.replace(spec, base_image=spec.base_image.image_name())
        builder = spec.builder
        if builder is None and cls._REGISTRY:
            builder = max(cls._REGISTRY, key=lambda n: cls._REGISTRY[n][1])
        if builder not in cls._REGISTRY:
            raise AssertionError(f"Image builder {builder} is not registered.")
        img_name = spec.image_name()
        b = cls._REGISTRY[builder][0]
        if b.should_build(spec):
            real = b.build_image(spec)
            if real is not None:
                cls._IMAGE_NAME_TO_REAL_NAME[img_name] = real
