"""Stand-in for flytekit.configuration (flytekit 1.16.24): Image and
ImageConfig, what ``pyflyte register --image NAME=IMAGE`` turns its
arguments into. IMAGE may be a reference or a path to an ImageSpec YAML
file, which is built (through ImageBuildEngine) first."""

import pathlib
import typing
from dataclasses import dataclass
from typing import List, Optional

from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec

DEFAULT_IMAGE_NAME = "default"


@dataclass
class Image:
    name: str
    fqn: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    def __post_init__(self):
        if not ((self.tag is None) or (self.digest is None)):
            raise ValueError(f"Cannot specify both tag and digest. Got tag={self.tag} and digest={self.digest}")

    @property
    def full(self) -> str:
        return f"{self.fqn}@{self.digest}" if self.digest else f"{self.fqn}:{self.tag}"

    @property
    def version(self) -> Optional[str]:
        return self.digest or self.tag

    @staticmethod
    def look_up_image_info(name: str, image_identifier: str, allow_no_tag_or_digest: bool = False) -> "Image":
        if pathlib.Path(image_identifier).is_file():
            import yaml

            with open(image_identifier, "r") as f:
                image_spec = ImageSpec(**yaml.safe_load(f))
                ImageBuildEngine.build(image_spec)
                image_identifier = image_spec.image_name()

        fqn, tag, digest = _parse_image_identifier(image_identifier)
        if not allow_no_tag_or_digest and tag is None and digest is None:
            raise AssertionError(f"Incorrectly formatted image {image_identifier}, missing tag or digest")
        return Image(name=name, fqn=fqn, tag=tag, digest=digest)


def _parse_image_identifier(image_identifier: str) -> typing.Tuple[str, Optional[str], Optional[str]]:
    """fully qualified name, tag, digest: ``r/n:t@sha256:x`` gives
    (``r/n:t``, None, ``sha256:x``)."""
    parts = image_identifier.rsplit("@", 1)
    if len(parts) == 2:
        return parts[0], None, parts[1]
    parts = image_identifier.rsplit(":", 1)
    if len(parts) == 2 and "/" not in parts[1]:
        return parts[0], parts[1], None
    return image_identifier, None, None


@dataclass(frozen=True)
class ImageConfig:
    default_image: Optional[Image] = None
    images: Optional[List[Image]] = None

    def find_image(self, name) -> Optional[Image]:
        lookup_images = [self.default_image] if self.default_image else []
        if self.images:
            lookup_images.extend(self.images)
        for i in lookup_images:
            if i.name == name:
                return i
        return None

    @staticmethod
    def validate_image(_: typing.Any, param: str, values: tuple) -> "ImageConfig":
        """``pyflyte register -i/--image`` values (NAME=IMAGE or IMAGE)."""
        default_image = None
        images = []
        for v in values:
            if "=" in v:
                splits = v.split("=", maxsplit=1)
                img = Image.look_up_image_info(name=splits[0], image_identifier=splits[1], allow_no_tag_or_digest=False)
            else:
                img = Image.look_up_image_info(DEFAULT_IMAGE_NAME, v, False)
            if img.name == DEFAULT_IMAGE_NAME:
                default_image = img
            else:
                images.append(img)
        return ImageConfig(default_image=default_image, images=images)
