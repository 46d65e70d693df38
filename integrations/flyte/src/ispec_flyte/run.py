"""Running ispec on a flyte.Image: the spec (and the secret values it
mounts) written into the project for the time ispec runs, ispec's
progress passed on as it comes, its JSON answer read back."""

import codecs
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .errors import IspecError
from .mapping import TEMP_PREFIX, Mapping, secret_value


@dataclass
class Options:
    """How ispec is run. ispec: the binary (default $ISPEC_BIN, else ispec
    on PATH); server: an ``ispec serve`` address to build through
    (--server; default $ISPEC_SERVER, which ispec reads itself); args:
    more arguments for every call; project: the folder the image's files
    are in (default flyte.init's root_dir, else the current folder);
    stderr: where ispec's progress goes (default sys.stderr)."""

    ispec: Optional[str] = None
    server: Optional[str] = None
    args: Sequence[str] = ()
    project: Optional[str] = None
    stderr: Any = None

    def binary(self) -> str:
        return self.ispec or os.environ.get("ISPEC_BIN") or "ispec"

    def folder(self) -> str:
        if self.project:
            return os.path.abspath(self.project)
        try:
            from flyte._initialize import _get_init_config

            cfg = _get_init_config()
            if cfg is not None and getattr(cfg, "root_dir", None):
                return os.path.abspath(str(cfg.root_dir))
        except ImportError:
            pass
        return os.getcwd()


@dataclass
class Outcome:
    """ispec's exit code, its last JSON record on stdout, the tail of its
    stderr and the argv it ran with."""

    code: int
    record: Dict[str, Any]
    tail: str
    argv: List[str]


def _copies_project(mapping: Mapping) -> bool:
    """Whether the spec copies the project folder itself, where the files
    of every other ispec run in the project are written meanwhile."""
    return any(pair.get("src") == "." for item in mapping.doc.get("layers", []) for pair in item.get("copy", []))


def lock_path(project: str) -> str:
    """The lock file of a project's temporary files (outside the project)."""
    key = hashlib.sha256(os.path.realpath(project).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"ispec-flyte-{key}.lock")


@contextlib.contextmanager
def _project_lock(project: str, exclusive: bool):
    """A lock on the project's temporary files, across threads and
    processes: a run whose spec copies the project folder holds it alone
    (another run's spec or secret file would otherwise be copied and
    hashed with the folder); other runs share it."""
    fd = os.open(lock_path(project), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def run_ispec(command: List[str], mapping: Mapping, opts: Options, label: str, quiet: bool = False) -> Outcome:
    """Runs ``ispec COMMAND [--server S] ARGS SPEC`` in the project with the
    spec of mapping (and its secret files) written there meanwhile.
    quiet keeps ispec's stderr to the tail."""
    project = opts.folder()
    with _project_lock(project, exclusive=_copies_project(mapping)):
        return _run_locked(command, mapping, opts, label, quiet, project)


def _run_locked(command: List[str], mapping: Mapping, opts: Options, label: str, quiet: bool, project: str) -> Outcome:
    written: List[str] = []
    fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".json", dir=project)
    written.append(path)
    name = os.path.basename(path)
    argv = [opts.binary(), *command]
    if opts.server:
        argv += ["--server", opts.server]
    argv += [*opts.args, name]
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(mapping.doc, f, indent=2, sort_keys=True)
        for s in mapping.secrets:
            p = os.path.join(project, s.source)
            sfd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            written.append(p)
            with os.fdopen(sfd, "wb") as f:
                f.write(secret_value(s.secret))
        sink = None if quiet else (opts.stderr or sys.stderr)
        tail = _Tail(name, label)
        try:
            proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise IspecError(f"{argv[0]} not found: install ispec on PATH or set ISPEC_BIN", 127, "", argv) from None
        with proc:
            pump = threading.Thread(target=_pump, args=(proc.stderr, sink, tail), daemon=True)
            pump.start()
            try:
                out = proc.stdout.read().decode("utf-8", "replace")
                code = proc.wait()
            finally:
                pump.join()
    finally:
        for p in written:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    return Outcome(code=code, record=_last_record(out), tail=tail.text(), argv=argv)


def _last_record(out: str) -> Dict[str, Any]:
    for line in reversed(out.splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            return rec
    return {}


def rename(text: str, spec_file: str, label: str) -> str:
    """text with the temporary spec file's name (and a line number after
    it, of a file the user never sees) replaced by label."""
    import re

    return re.sub(re.escape(spec_file) + r"(:\d+)?", lambda _: label, text)


class _Tail:
    """The last lines ispec wrote on stderr, its spec file named as the
    image."""

    def __init__(self, name: str, label: str, keep: int = 20):
        self.name, self.label, self.keep = name, label, keep
        self.lines: List[str] = []
        self.partial = ""

    def add(self, text: str) -> str:
        text = rename(text, self.name, self.label)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        self.lines = (self.lines + lines)[-self.keep :]
        return text

    def text(self) -> str:
        return "\n".join(self.lines + ([self.partial] if self.partial else [])).strip()


def _pump(stream, sink, tail: _Tail) -> None:
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = stream.read1(65536)
        text = dec.decode(chunk, final=not chunk)
        if text:
            text = tail.add(text)
            if sink is not None:
                try:
                    sink.write(text)
                    sink.flush()
                except (OSError, ValueError):
                    pass
        if not chunk:
            return
