"""Stand-in of flyte._build: the result of a build, and flyte.build."""

import asyncio
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class ImageBuild:
    """uri: the image built or found (None when the build was started and
    not awaited); remote_run: the remote builder's run, None locally."""

    uri: Optional[str]
    remote_run: Optional[Any]


async def _build(image, dry_run: bool = False, force: bool = False, wait: bool = True) -> ImageBuild:
    from flyte._internal.imagebuild.image_builder import ImageBuildEngine

    return await ImageBuildEngine.build(image, dry_run=dry_run, force=force, wait=wait)


class _Build:
    """flyte.build is syncified: build(image) runs it, build.aio(image) is
    the coroutine."""

    def __call__(self, image, dry_run: bool = False, force: bool = False, wait: bool = True) -> ImageBuild:
        return asyncio.run(_build(image, dry_run=dry_run, force=force, wait=wait))

    aio = staticmethod(_build)


build = _Build()
