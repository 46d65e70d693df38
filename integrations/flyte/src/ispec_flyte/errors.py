"""The plugin's error."""

from typing import List, Optional

#: ispec's exit codes: a build step failed, an invalid spec, the registry
#: or BuildKit unavailable.
FAILED, INVALID, UNAVAILABLE = 1, 2, 3


class IspecError(RuntimeError):
    """ispec could not give the image, or the flyte.Image cannot be given
    to it. ``code`` is ispec's exit code (1 a build step failed, 2 an
    invalid spec, 3 the registry or BuildKit unavailable), ``kind`` its
    error class (failed, invalid, unavailable, interrupted) when it said
    one, ``argv`` the command run."""

    def __init__(self, message: str, code: int, kind: str = "", argv: Optional[List[str]] = None):
        super().__init__(message)
        self.message, self.code, self.kind, self.argv = message, code, kind, list(argv or [])
