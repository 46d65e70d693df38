"""Stand-in of flyte.errors: the one error the image builders raise."""


class ImageBuildError(RuntimeError):
    """An image could not be built (flyte.errors.ImageBuildError)."""
