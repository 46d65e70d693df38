"""The flyte-sdk image builder and image checker.

How flyte-sdk (2.x) uses them: ``ImageBuildEngine.build(image)`` first
asks the builder's checkers, in order, whether the image exists under
flyte-sdk's own name for it (``registry/name:<md5 of the layers>``); a
URI means it exists and nothing is built, None means absent, an exception
passes to the next checker, and when every checker raised it assumes the
image exists. Only when absent does it call ``build_image``, whose URI the
tasks then run on.

ispec names images by its own content hash, so the checker finds the
flyte.Image being checked (the caller's ``image``, matched by repository
and tag) and asks ``ispec exists`` for its spec: exists gives
``ref@digest``; absent gives None. It never raises: an answer ispec could
not get (the registry unreachable, an invalid spec), or an image it cannot
identify, is None, so that flyte-sdk goes on to ``build_image``, whose
``ispec build`` asks the registry again and fails with the reason, rather
than run tasks on an image nobody found. ``build_image`` runs ``ispec
build --json``, which builds only an absent image, and returns
``ref@digest``.
"""

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from .errors import FAILED, IspecError
from .mapping import Mapping, spec_document
from .run import Options, rename, run_ispec

logger = logging.getLogger("ispec_flyte")

# How many callers up the checker looks for the image being checked.
_FRAMES = 12


@dataclass(frozen=True)
class Lookup:
    """ispec's answer for an image: state is exists, absent or unknown
    (``ispec exists``'s three answers); ref and digest when it exists;
    reason when unknown."""

    state: str
    ref: str = ""
    digest: str = ""
    reason: str = ""

    @property
    def pinned(self) -> str:
        """``ref@digest``, for an image that exists."""
        return f"{self.ref}@{self.digest}" if self.digest else ""


def _label(image) -> str:
    return f"flyte.Image {image.name or image.base_image!r}"


class IspecImageBuilder:
    """A flyte-sdk image builder that builds through ispec: each image once,
    named by its content. See Options for the arguments (all optional)."""

    def __init__(
        self,
        ispec: Optional[str] = None,
        server: Optional[str] = None,
        args: Sequence[str] = (),
        project: Optional[str] = None,
        stderr: Any = None,
    ):
        self.options = Options(ispec=ispec, server=server, args=tuple(args), project=project, stderr=stderr)

    def __repr__(self) -> str:
        return "ispec"

    def get_checkers(self) -> Optional[List[type]]:
        """One checker: ispec's lookup, with this builder's options."""
        return [type("IspecImageChecker", (IspecImageChecker,), {"options": self.options})]

    def mapping(self, image) -> Mapping:
        """The ispec spec of image (see ispec_flyte.mapping)."""
        return spec_document(image, self.options.folder())

    def lookup(self, image) -> Lookup:
        """``ispec exists --json`` for image. Never raises for an answer it
        could not get: that is state unknown, with the reason."""
        label = _label(image)
        try:
            out = run_ispec(["exists", "--json"], self.mapping(image), self.options, label, quiet=True)
        except IspecError as e:
            return Lookup(state="unknown", reason=str(e))
        rec = out.record
        state = rec.get("state", "")
        if out.code == 0 and state == "exists" and rec.get("digest"):
            return Lookup(state="exists", ref=rec.get("ref", ""), digest=rec["digest"])
        if out.code == 1 and state == "absent":
            return Lookup(state="absent", ref=rec.get("ref", ""))
        reason = rec.get("reason") or out.tail or f"ispec exited {out.code}"
        return Lookup(state="unknown", ref=rec.get("ref", ""), reason=reason)

    def build(self, image, force: bool = False) -> Tuple[str, bool]:
        """``ispec build --json``: the image's ``ref@digest`` and whether
        ispec built it (False: it existed)."""
        label = _label(image)
        cmd = ["build", "--json"] + (["--force"] if force else [])
        out = run_ispec(cmd, self.mapping(image), self.options, label)
        rec = out.record
        err = rec.get("error") or {}
        spec_file = out.argv[-1]
        if out.code != 0 or err:
            message = rename(err.get("message") or "", spec_file, label) or out.tail or f"ispec exited {out.code}"
            raise IspecError(message, out.code or FAILED, err.get("class", ""), out.argv)
        if not rec.get("ref") or not rec.get("digest"):
            raise IspecError(f"ispec build printed no image: {rec!r}", FAILED, "", out.argv)
        return f"{rec['ref']}@{rec['digest']}", bool(rec.get("built"))

    def tag(self, image) -> str:
        """``ispec tag --json``: the image's ref, contacting nothing."""
        out = run_ispec(["tag", "--json"], self.mapping(image), self.options, _label(image), quiet=True)
        if out.code != 0 or not out.record.get("ref"):
            raise IspecError(out.tail or f"ispec exited {out.code}", out.code or FAILED, "", out.argv)
        return out.record["ref"]

    async def build_image(self, image, dry_run: bool = False, wait: bool = True, force: bool = False):
        """Builds image through ispec (only when absent; ``force``: always)
        and returns its ``ref@digest``, as flyte-sdk's ImageBuild (a str
        for flyte-sdk versions before ImageBuild). dry_run builds nothing:
        it prints the spec on stderr and returns the ref ispec would push.
        The build is awaited whatever wait says (ispec has no detached
        build)."""
        if dry_run:
            import json

            sink = self.options.stderr or sys.stderr
            sink.write(json.dumps(self.mapping(image).doc, indent=2, sort_keys=True) + "\n")
            uri = await asyncio.to_thread(self.tag, image)
        else:
            uri, _ = await asyncio.to_thread(self.build, image, force)
        return _image_build(uri)


def _image_build(uri: str):
    try:
        from flyte._build import ImageBuild
    except ImportError:  # flyte-sdk before ImageBuild: builders return the URI
        return uri
    return ImageBuild(uri=uri, remote_run=None)


class IspecImageChecker:
    """flyte-sdk's ImageChecker through ispec's lookup (see the module's
    docstring). ``options`` is set by IspecImageBuilder.get_checkers."""

    options: Options = Options()

    #: The last answers, newest last (for logs and tests).
    answers: List[Tuple[str, str, Lookup]] = []

    @classmethod
    async def image_exists(cls, repository: str, tag: str, arch: Tuple[str, ...] = ("linux/amd64",)) -> Optional[str]:
        image = _find_image(sys._getframe(1), repository, tag)
        if image is None:
            logger.info("ispec: cannot tell which flyte.Image %s:%s is; the build asks ispec", repository, tag)
            return None
        if tuple(image.platform) != tuple(arch):
            image = image.clone(platform=tuple(arch))
        builder = IspecImageBuilder()
        builder.options = cls.options
        answer = await asyncio.to_thread(builder.lookup, image)
        IspecImageChecker.answers = (IspecImageChecker.answers + [(repository, tag, answer)])[-20:]
        if answer.state == "exists":
            return answer.pinned
        if answer.state == "unknown":
            sink = cls.options.stderr or sys.stderr
            sink.write(f"ispec: could not tell whether {repository} exists ({answer.reason}); building, which asks again\n")
        return None


def _find_image(frame, repository: str, tag: str):
    """The flyte.Image in a caller's locals whose repository and tag are
    these: flyte-sdk's checker protocol gives only the name, and ispec's
    lookup needs the image's layers."""
    try:
        from flyte._image import Image
    except ImportError:
        return None
    for _ in range(_FRAMES):
        if frame is None:
            return None
        for value in list(frame.f_locals.values()):
            if isinstance(value, Image) and value.name and _matches(value, repository, tag):
                return value
        frame = frame.f_back
    return None


def _matches(image, repository: str, tag: str) -> bool:
    repo = f"{image.registry}/{image.name}" if image.registry else image.name
    try:
        return repo == repository and image._final_tag == tag
    except Exception:  # a layer's files vanished: not this one
        return False
