"""The ispec ImageSpecBuilder.

How flytekit (>= 1.13.5, modelled on 1.16.24) uses a builder: at
registration ``ImageBuildEngine.build`` computes flytekit's own name for
the spec, asks the builder's ``should_build``, and only when that is true
calls ``build_image`` and records the name it returns, which the tasks are
then registered with. So ``should_build`` is always true here, and
``build_image`` runs ``ispec build --json``: ispec asks the registry first
and builds only an image that is absent, so for an image that exists the
call is one registry request, and returns the ``ref@digest`` found. Every
registration, in whatever process, records the image ispec found or built.

The ImageSpec's fields are written to a JSON spec file (ispec reads
flytekit's field names) in the current folder, the folder flytekit resolves
an ImageSpec's relative paths against; ispec leaves its own spec file out
of every tree it hashes, so ``source_root="."`` gives the same tag on
every call, and a run whose spec hashes the project folder holds the
project's lock alone, so that another run's spec file is never hashed
with it. Absolute paths inside the current folder are written relative
to it; paths outside it are refused (ispec reads nothing outside a spec's
folder).

Everything else, where BuildKit is, the registry's credentials, the ispec
service (ISPEC_SERVER), comes from ispec's own configuration and
environment.
"""

import codecs
import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from typing import Any, Dict, List, Optional, Tuple

from flytekit.image_spec.image_spec import ImageSpec, ImageSpecBuilder

#: flytekit's image id variable: flytekit-built images carry it, and
#: ``ImageSpec.is_container()`` compares it with the spec's id inside a task.
IMAGE_ID_ENV = "_F_IMG_ID"

#: Set to false to keep the plugin from adding flytekit to a spec that
#: names none (see IspecImageSpecBuilder's add_flytekit).
ADD_FLYTEKIT_ENV = "ISPEC_FLYTEKIT_ADD_FLYTEKIT"

#: ImageSpec fields that are not part of the image, left out of ispec's
#: spec: packages flytekit installs when the task starts, and the default
#: builder's own tool images.
RUNTIME_ONLY_FIELDS = ("runtime_packages", "builder_config")

# Exit code of an invalid spec (ispec's).
_INVALID = 2

# flytekit's test of a requirement line for flytekit itself
# (flytekit.image_spec.default_builder._is_flytekit).
_PACKAGE_NAME_RE = re.compile(r"^[\w-]+")

# Lock files flytekit's builder installs with their own tools, not as
# requirement lines.
_LOCK_FILES = ("uv.lock", "poetry.lock")


class IspecError(RuntimeError):
    """ispec failed, or the ImageSpec cannot be given to it. ``code`` is
    ispec's exit code class: 1 build failed, 2 invalid spec, 3 registry or
    BuildKit unavailable; ``kind`` is ispec's error class (``failed``,
    ``invalid``, ``unavailable``, ``interrupted``) when it said one."""

    def __init__(self, message: str, code: int, kind: str = "", command: Optional[List[str]] = None):
        self.message, self.code, self.kind, self.command = message, code, kind, list(command or [])
        super().__init__(message)


def image_id(image_spec: ImageSpec) -> str:
    """What flytekit's builder sets _F_IMG_ID to: the spec's id."""
    return image_spec.id


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


def _is_flytekit(requirement: str) -> bool:
    m = _PACKAGE_NAME_RE.match(requirement.strip())
    return bool(m) and m.group() == "flytekit"


def flytekit_requirement() -> str:
    """The requirement flytekit's own builder adds to a spec that names no
    flytekit: ``flytekit==<the running version>``, or ``flytekit`` for a
    development version."""
    from flytekit import __version__

    if not __version__ or "dev" in __version__:
        return "flytekit"
    return f"flytekit=={__version__}"


def names_flytekit(image_spec: ImageSpec) -> bool:
    """Whether the spec installs flytekit itself, as flytekit's builder
    decides: a ``packages`` entry or a line of the requirements file (a
    uv.lock or poetry.lock counts as naming it)."""
    if any(_is_flytekit(p) for p in image_spec.packages or []):
        return True
    req = image_spec.requirements
    if not req:
        return False
    if os.path.basename(req) in _LOCK_FILES:
        return True
    try:
        with open(req) as f:
            return any(_is_flytekit(line) for line in f)
    except OSError:
        return False  # ispec names the missing file


def spec_document(image_spec: ImageSpec, add_flytekit: bool = False) -> Dict[str, Any]:
    """The ispec spec of an ImageSpec: its set fields under their own names
    (paths as written; see relativize_paths), flytekit's image id variable
    in env, and, with add_flytekit, flytekit pinned to the running version
    in packages when the spec names none."""
    doc: Dict[str, Any] = {}
    for field in dataclasses.fields(image_spec):
        if field.name.startswith("_") or field.name in RUNTIME_ONLY_FIELDS:
            continue
        value = getattr(image_spec, field.name)
        if value is None:
            continue
        doc[field.name] = _plain(value)
    if doc.get("source_copy_mode") == "NO_COPY":
        # Nothing is copied from it: its path does not matter, even outside.
        doc.pop("source_root", None)
    env = dict(doc.get("env") or {})
    env[IMAGE_ID_ENV] = image_id(image_spec)
    doc["env"] = env
    if add_flytekit and not names_flytekit(image_spec):
        doc["packages"] = list(doc.get("packages") or []) + [flytekit_requirement()]
    return doc


def _inside(path: str, folder: str) -> Optional[str]:
    """path relative to folder (both absolute and clean), or None when it
    is outside."""
    rel = os.path.relpath(path, folder)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel


def project_relative(field: str, value: str, project: str, label: str) -> str:
    """A path of an ImageSpec as ispec's spec in project writes it: relative
    paths as written, absolute ones relative to project; a path outside
    project (absolute, or climbing out with ..) is an IspecError."""
    if not os.path.isabs(value):
        if _inside(os.path.normpath(os.path.join(project, value)), project) is not None:
            return value
        absolute = os.path.normpath(os.path.join(project, value))
    else:
        absolute = os.path.normpath(value)
        rel = _inside(absolute, project)
        if rel is None:
            # The same place reached through a symlink (a project under a
            # linked home folder, or __file__ as Python spelled it).
            rel = _inside(os.path.realpath(absolute), os.path.realpath(project))
        if rel is not None:
            return rel.replace(os.sep, "/")
    raise IspecError(
        f"{label}: {field} {value} is outside the project {project}: ispec reads only files "
        f"under the folder pyflyte runs in (the one relative paths start from); "
        f"move it there, or run pyflyte from a folder that holds it",
        _INVALID,
        "invalid",
    )


def relativize_paths(doc: Dict[str, Any], project: str, label: str) -> Dict[str, Any]:
    """doc with source_root, requirements, copy and pip_secret_mounts
    sources written relative to project (see project_relative)."""
    out = dict(doc)
    for field in ("source_root", "requirements"):
        if isinstance(out.get(field), str):
            out[field] = project_relative(field, out[field], project, label)
    if out.get("copy"):
        out["copy"] = [project_relative(f"copy[{i}]", p, project, label) for i, p in enumerate(out["copy"])]
    if out.get("pip_secret_mounts"):
        out["pip_secret_mounts"] = [
            [project_relative(f"pip_secret_mounts[{i}]", src, project, label), dst]
            for i, (src, dst) in enumerate(out["pip_secret_mounts"])
        ]
    return out


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None or v.strip() == "":
        return default
    s = v.strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={v!r}: expected true or false")


class IspecImageSpecBuilder(ImageSpecBuilder):
    """Builds ImageSpecs with ispec.

    :param ispec: the ispec command; default ISPEC_BIN, else ``ispec`` on PATH.
    :param args: extra arguments given to every ispec call (e.g.
        ``["--progress", "plain"]``); default none.
    :param add_flytekit: add ``flytekit==<running version>`` to a spec that
        names no flytekit, as flytekit's own builder does; default
        ISPEC_FLYTEKIT_ADD_FLYTEKIT, else true.
    :param stderr: where ispec's progress and messages go, as they come;
        default ``sys.stderr`` at the time of the call.
    """

    def __init__(
        self,
        ispec: Optional[str] = None,
        args: Optional[List[str]] = None,
        add_flytekit: Optional[bool] = None,
        stderr=None,
    ):
        self.ispec = ispec
        self.args = list(args or [])
        self.add_flytekit = add_flytekit
        self.stderr = stderr

    def should_build(self, image_spec: ImageSpec) -> bool:
        """Always true: flytekit records the name build_image returns only
        then, and build_image finds an existing image with one registry
        request (it builds only an absent one)."""
        return True

    def build_image(self, image_spec: ImageSpec) -> str:
        """``ispec build --json``: the ``ref@digest`` (``registry/name:tag@sha256:...``)
        of the image ispec found or built."""
        cmd = ["build", "--json"]
        if getattr(image_spec, "_is_force_push", False):
            cmd.append("--force")
        code, out, tail, spec_file = self._run(cmd, image_spec)
        rec = _last_record(out)
        err = rec.get("error") or {}
        if code != 0 or err:
            message = _rename(err.get("message") or "", spec_file, _label(image_spec))
            raise IspecError(
                message or tail or f"ispec exited {code}",
                code or 1,
                err.get("class", ""),
                ["ispec", *cmd],
            )
        if not rec.get("ref") or not rec.get("digest"):
            raise IspecError(f"ispec build printed no image: {out.strip()!r}", 1, "", ["ispec", *cmd])
        return f"{rec['ref']}@{rec['digest']}"

    def document(self, image_spec: ImageSpec, project: Optional[str] = None) -> Dict[str, Any]:
        """The spec ispec is given for image_spec, its paths relative to
        project (default: the current folder)."""
        add = self.add_flytekit
        if add is None:
            add = _env_bool(ADD_FLYTEKIT_ENV, True)
        doc = spec_document(image_spec, add_flytekit=add)
        return relativize_paths(doc, project or os.getcwd(), _label(image_spec))

    def _run(self, cmd: List[str], image_spec: ImageSpec) -> Tuple[int, str, str, str]:
        """Runs ispec on the spec's file; returns its exit code, stdout, the
        last lines of its stderr and the spec file's name. stderr is passed
        on as it comes, the spec file named by its ImageSpec."""
        ispec = self.ispec or os.environ.get("ISPEC_BIN") or "ispec"
        project = os.getcwd()
        doc = self.document(image_spec, project)
        with _project_lock(project, exclusive=_hashes_project(doc)):
            return self._run_locked(ispec, cmd, doc, image_spec, project)

    def _run_locked(
        self, ispec: str, cmd: List[str], doc: Dict[str, Any], image_spec: ImageSpec, project: str
    ) -> Tuple[int, str, str, str]:
        fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".json", dir=project)
        name = os.path.basename(path)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=2, sort_keys=True)
            argv = [ispec, *cmd, *self.args, name]
            sink = self.stderr or sys.stderr
            tail = _Tail(name, _label(image_spec))
            try:
                proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except FileNotFoundError:
                raise IspecError(f"{ispec} not found: install ispec on PATH or set ISPEC_BIN", 127, "", argv) from None
            with proc:
                pump = threading.Thread(target=_pump, args=(proc.stderr, sink, tail), daemon=True)
                pump.start()
                try:
                    out = proc.stdout.read()
                    code = proc.wait()
                finally:
                    pump.join()
        finally:
            os.unlink(path)
        return code, out.decode("utf-8", "replace"), tail.text(), name


#: The prefix of the spec files the plugin writes into the project.
TEMP_PREFIX = ".ispec-flytekit-"


def _hashes_project(doc: Dict[str, Any]) -> bool:
    """Whether the spec hashes the project folder itself (source_root or a
    copy of "."), where every other ispec run in the project writes its
    spec file meanwhile."""

    def is_root(p: Any) -> bool:
        return isinstance(p, str) and os.path.normpath(p) == "."

    return is_root(doc.get("source_root")) or any(is_root(p) for p in doc.get("copy") or [])


def lock_path(project: str) -> str:
    """The lock file of a project's temporary spec files (outside the
    project)."""
    key = hashlib.sha256(os.path.realpath(project).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"ispec-flytekit-{key}.lock")


@contextlib.contextmanager
def _project_lock(project: str, exclusive: bool):
    """A lock on the project's temporary spec files, across threads and
    processes: a run whose spec hashes the project folder holds it alone
    (another run's spec file would otherwise be copied and hashed with the
    folder, and its tag would change from run to run); other runs share
    it."""
    fd = os.open(lock_path(project), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _last_record(out: str) -> Dict[str, Any]:
    """The last JSON object ispec printed on stdout, or {}."""
    for line in reversed(out.splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            return rec
    return {}


def _label(image_spec: ImageSpec) -> str:
    """How messages name an ImageSpec (ispec's name for the spec file)."""
    return f'ImageSpec "{image_spec.name}"'


def _rename(text: str, spec_file: str, label: str) -> str:
    """text with the temporary spec file's name (and the line numbers ispec
    gives after it, lines of a file the user never sees) replaced by
    label."""
    return re.sub(re.escape(spec_file) + r"(:\d+)?", lambda _: label, text)


class _Tail:
    """The last lines ispec wrote to stderr, its spec file's name replaced
    with the ImageSpec's."""

    def __init__(self, name: str, label: str, keep: int = 20):
        self.name, self.label, self.keep = name, label, keep
        self.lines: List[str] = []
        self.partial = ""

    def add(self, text: str) -> str:
        text = _rename(text, self.name, self.label)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        self.lines = (self.lines + lines)[-self.keep :]
        return text

    def text(self) -> str:
        return "\n".join(self.lines + ([self.partial] if self.partial else [])).strip()


def _pump(stream, sink, tail: _Tail) -> None:
    """Copies ispec's stderr to sink as it arrives (whatever it has, not
    whole lines), keeping the tail."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = stream.read1(65536)
        text = dec.decode(chunk, final=not chunk)
        if text:
            text = tail.add(text)
            try:
                sink.write(text)
                sink.flush()
            except (OSError, ValueError):
                pass  # a closed sink must not stop the draining
        if not chunk:
            return

