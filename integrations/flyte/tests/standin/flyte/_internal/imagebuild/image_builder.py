"""Stand-in of flyte._internal.imagebuild.image_builder (flyte-sdk 2.6.5):
the ImageBuilder and ImageChecker protocols and ImageBuildEngine, which
checks whether an image exists before it builds it and loads builders
from the ``flyte.plugins.image_builders`` entry points.

As in flyte-sdk: the first checker that answers decides (a URI: exists,
None: absent); a checker that raises hands over to the next; when every
checker raises, the engine assumes the image exists and builds nothing."""

import asyncio
import functools
import logging
import typing
from importlib.metadata import entry_points
from typing import List, Optional, Tuple

from typing import Protocol

from flyte._image import Architecture, Image
from flyte._initialize import _get_init_config

logger = logging.getLogger("flyte")

#: What the engine said, in order (flyte-sdk prints it through its status
#: logger); tests read it.
status_log: List[str] = []


def _status(msg: str) -> None:
    status_log.append(msg)
    logger.info(msg)


def alru_cache(fn):
    """async_lru.alru_cache: one result per argument tuple; as async_lru
    does, the wrapped coroutine runs in a task of its own."""
    cache = {}

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = await asyncio.get_running_loop().create_task(fn(*args, **kwargs))
        return cache[key]

    wrapper.cache_clear = cache.clear
    return wrapper


class ImageBuilder(Protocol):
    async def build_image(self, image: Image, dry_run: bool, wait: bool = True, force: bool = False) -> "ImageBuild": ...

    def get_checkers(self) -> Optional[typing.List[typing.Type["ImageChecker"]]]:
        """ImageCheckers to ask whether an image exists; None: assume it does."""
        return None


class ImageChecker(Protocol):
    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: Tuple[Architecture, ...] = ("linux/amd64",)
    ) -> Optional[str]:
        """The image's URI when it exists, None when it definitely does not;
        raises when it cannot tell, so that the next checker is asked."""
        ...


class ImageBuildEngine:
    ImageBuilderType = typing.Literal["local", "remote"]

    @staticmethod
    @alru_cache
    async def image_exists(image: Image) -> Optional[str]:
        if not image._is_cloned:
            return image.uri
        if image.name is None:
            return image.uri
        tag = image._final_tag
        if tag == "latest":
            return image.uri
        builder = None
        cfg = _get_init_config()
        if cfg and cfg.image_builder:
            builder = cfg.image_builder
        image_builder = ImageBuildEngine._get_builder(builder)
        image_checker = image_builder.get_checkers()
        if image_checker is None:
            _status(f"No image checkers found for builder `{image_builder}`, assuming it exists")
            return image.uri
        for checker in image_checker:
            try:
                repository = image.registry + "/" + image.name if image.registry else image.name
                image_uri = await checker.image_exists(repository, tag, tuple(image.platform))
                if image_uri:
                    return image_uri
                return None
            except Exception as e:
                logger.debug(f"Error checking image existence with {checker.__name__}: {e}")
                continue
        _status(f"All checkers failed to check existence of {image.uri}, assuming it exists")
        return image.uri

    @classmethod
    @alru_cache
    async def build(
        cls,
        image: Image,
        builder: Optional[str] = None,
        dry_run: bool = False,
        force: bool = False,
        wait: bool = True,
    ) -> "ImageBuild":
        from flyte._build import ImageBuild

        cfg = _get_init_config()
        if cfg and cfg.image_builder:
            builder = builder or cfg.image_builder
        if force or dry_run:
            image_uri = image.uri
        elif image_uri := await cls.image_exists(image):
            _status(f"Image {image_uri} already exists, skipping build")
            return ImageBuild(uri=image_uri, remote_run=None)
        else:
            _status(f"Image {image.uri} not found, building...")
        image.validate()
        img_builder = ImageBuildEngine._get_builder(builder)
        return await img_builder.build_image(image, dry_run=dry_run, wait=wait, force=force)

    @classmethod
    def _get_builder(cls, builder=None) -> ImageBuilder:
        if builder is None:
            builder = "local"
        if not isinstance(builder, str):
            return builder
        if builder in ("local", "remote"):
            raise NotImplementedError(f"the stand-in has no {builder} builder")
        return cls._load_custom_image_builders(builder)

    @classmethod
    def _load_custom_image_builders(cls, name: str) -> ImageBuilder:
        plugins = entry_points(group="flyte.plugins.image_builders")
        for ep in plugins:
            if ep.name != name:
                continue
            try:
                _status(f"Loading image builder: {ep.name}")
                builder = ep.load()
                if callable(builder):
                    return builder()
                return builder
            except Exception as e:
                raise RuntimeError(f"Failed to load image builder {ep.name} with error: {e}")
        raise ValueError(
            f"Unknown image builder type: {name}. Available builders: {[ep.name for ep in plugins] + ['local', 'remote']}"
        )
