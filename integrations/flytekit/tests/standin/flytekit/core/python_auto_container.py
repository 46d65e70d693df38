"""Stand-in for flytekit.core.python_auto_container (flytekit 1.16.24):
get_registerable_container_image, what serialization (``pyflyte
register``, ``pyflyte run --remote``) calls to turn a task's
``container_image`` into the image Flyte runs it in."""

import re
from typing import Optional, Union

from flytekit.configuration import ImageConfig
from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec


def get_registerable_container_image(img: Optional[Union[str, ImageSpec]], cfg: ImageConfig) -> str:
    if isinstance(img, ImageSpec):
        image = cfg.find_image(img.id)
        image_name = image.full if image else None
        if not image_name:
            ImageBuildEngine.build(img)
            image_name = img.image_name()
        return image_name

    if img is not None and img != "":
        matches = _IMAGE_REPLACE_REGEX.findall(img)
        if matches is None or len(matches) == 0:
            return img
        for m in matches:
            replace_group, name, attr = m
            if name is None or name == "":
                raise AssertionError(f"Image format is incorrect {m}")
            img_cfg = cfg.find_image(name)
            if img_cfg is None:
                raise AssertionError(f"Image Config with name {name} not found in the configuration")
            if attr == "version":
                version = img_cfg.version if img_cfg.version is not None else cfg.default_image.version
                if ":" in version:
                    # flytekit 1.16.24 (flyteorg/flytekit#3440): a digest
                    # takes "@", not ":". Earlier versions replace as is,
                    # and fqn:version of a digest is no valid reference.
                    colon_prefixed = f":{replace_group}"
                    if colon_prefixed in img:
                        img = img.replace(colon_prefixed, f"@{version}")
                    else:
                        img = img.replace(replace_group, version)
                else:
                    img = img.replace(replace_group, version)
            elif attr == "fqn":
                img = img.replace(replace_group, img_cfg.fqn)
            elif attr == "":
                img = img.replace(replace_group, img_cfg.full)
            else:
                raise AssertionError(f"Only fqn and version are supported replacements, {attr} is not supported")
        return img
    if cfg.default_image is None:
        raise ValueError("An image is required for PythonAutoContainer tasks")
    return cfg.default_image.full


_IMAGE_TEMPLATE_SUBSTRING_REGEX = r"(?:\.([a-zA-Z0-9_-]+))"
_IMAGE_REPLACE_REGEX = re.compile(
    rf"({{{{\s*\.image[s]?{_IMAGE_TEMPLATE_SUBSTRING_REGEX}{_IMAGE_TEMPLATE_SUBSTRING_REGEX}?\s*}}}})", re.IGNORECASE
)
