"""Stand-in for flytekit.image_spec.noop_builder (flytekit 1.16.24)."""

import sys

from .image_spec import ImageSpec, ImageSpecBuilder


class NoOpBuilder(ImageSpecBuilder):
    builder_type = "noop"

    def should_build(self, image_spec: ImageSpec) -> bool:
        return True

    def build_image(self, image_spec: ImageSpec) -> str:
        if not isinstance(image_spec.base_image, str):
            raise ValueError("base_image must be a string to use the noop image builder")
        print(f"Using image: {image_spec.base_image}", file=sys.stderr)
        return image_spec.base_image
