"""The ispec ImageSpecBuilder.

The ImageSpec's fields are written, unchanged, to a JSON spec file (ispec
reads flytekit's field names) in the current folder, the folder flytekit
resolves an ImageSpec's relative paths (requirements, copy, source_root)
against; the file is removed after each call. ispec then:

- ``should_build``: ``ispec exists --json SPEC``: exit 0 exists, 1 absent;
  anything else (the registry could not say, an invalid spec) raises. An
  image is never assumed to exist when the registry cannot say.
- ``build_image``: ``ispec build --json SPEC``: returns ``ref@digest``, which
  flytekit registers the tasks with.

Everything else, where BuildKit is, the registry's credentials, the ispec
service (ISPEC_SERVER), comes from ispec's own configuration and
environment.
"""

import dataclasses
import enum
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional

from flytekit.image_spec.image_spec import ImageSpec, ImageSpecBuilder

#: flytekit's image id variable: flytekit-built images carry it, and
#: ``ImageSpec.is_container()`` compares it with the spec's id inside a task.
IMAGE_ID_ENV = "_F_IMG_ID"

# Exit codes of `ispec exists`.
_EXISTS, _ABSENT = 0, 1


class IspecError(RuntimeError):
    """ispec failed: the message is ispec's, the exit code its class
    (1 build failed, 2 invalid spec, 3 registry or BuildKit unavailable)."""

    def __init__(self, command: List[str], code: int, stderr: str):
        self.command, self.code, self.stderr = command, code, stderr
        super().__init__(f"{' '.join(command[:2])} exited {code}: {stderr.strip()}")


def image_id(image_spec: ImageSpec) -> str:
    """What flytekit sets _F_IMG_ID to: the spec's id (flytekit >= 1.13),
    else (older flytekit, whose is_container compares image names) its
    image name."""
    ident = getattr(image_spec, "id", None)
    if isinstance(ident, str) and ident:
        return ident
    return image_spec.image_name()


def _plain(value: Any) -> Any:
    """A field's value as JSON: enums by name (source_copy_mode), tuples as
    lists (pip_secret_mounts), a nested ImageSpec as its image name."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, ImageSpec):
        return value.image_name()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def spec_document(image_spec: ImageSpec) -> Dict[str, Any]:
    """The ispec spec of an ImageSpec: its set fields under their own names,
    plus flytekit's image id variable in env."""
    doc: Dict[str, Any] = {}
    for field in dataclasses.fields(image_spec):
        if field.name.startswith("_"):
            continue
        value = getattr(image_spec, field.name)
        if value is None:
            continue
        doc[field.name] = _plain(value)
    env = dict(doc.get("env") or {})
    env[IMAGE_ID_ENV] = image_id(image_spec)
    doc["env"] = env
    return doc


class IspecImageSpecBuilder(ImageSpecBuilder):
    """Builds ImageSpecs with ispec.

    :param ispec: the ispec command; default ISPEC_BIN, else ``ispec`` on PATH.
    :param args: extra arguments given to every ispec call (e.g. ``["--progress", "plain"]``).
    """

    def __init__(self, ispec: Optional[str] = None, args: Optional[List[str]] = None):
        self.ispec = ispec
        self.args = list(args or [])

    def should_build(self, image_spec: ImageSpec) -> bool:
        if getattr(image_spec, "_is_force_push", False):
            return True
        code, out, err = self._run(["exists", "--json"], image_spec, ok=(_EXISTS, _ABSENT))
        return code == _ABSENT

    def build_image(self, image_spec: ImageSpec) -> str:
        cmd = ["build", "--json"]
        if getattr(image_spec, "_is_force_push", False):
            cmd.append("--force")
        _, out, _ = self._run(cmd, image_spec, ok=(0,))
        lines = [ln for ln in out.splitlines() if ln.strip()]
        if not lines:
            raise IspecError(["ispec", "build"], 0, "printed no result")
        rec = json.loads(lines[-1])
        return f"{rec['ref']}@{rec['digest']}"

    def _run(self, cmd: List[str], image_spec: ImageSpec, ok) -> tuple:
        ispec = self.ispec or os.environ.get("ISPEC_BIN") or "ispec"
        fd, path = tempfile.mkstemp(prefix=".ispec-flytekit-", suffix=".json", dir=os.getcwd())
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(spec_document(image_spec), f, indent=2, sort_keys=True)
            argv = [ispec, *cmd, *self.args, os.path.basename(path)]
            # ispec's stderr (progress, warnings) is passed on after the call.
            proc = subprocess.run(argv, cwd=os.getcwd(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        finally:
            os.unlink(path)
        if proc.stderr:
            sys.stderr.write(proc.stderr)
        if proc.returncode not in ok:
            raise IspecError(argv, proc.returncode, proc.stderr)
        return proc.returncode, proc.stdout, proc.stderr
