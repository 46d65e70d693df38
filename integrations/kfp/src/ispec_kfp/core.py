"""The helper's work: spec document, build through ispec, component
arguments. See the package's docstring."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

# KFP 2's default base image for lightweight components.
DEFAULT_BASE_IMAGE = "python:3.9"

# The arguments of kfp.dsl.component this helper consumes: they become the
# image. Every other argument is passed on to dsl.component unchanged.
_CONSUMED = ("base_image", "packages_to_install", "pip_index_urls", "pip_trusted_hosts", "install_kfp_package", "kfp_package_path")

# What a spec's name may hold (ispec's repository grammar, one path part).
_NAME_BAD = re.compile(r"[^a-z0-9._-]+")


class IspecError(RuntimeError):
    """ispec could not give the image: ``code`` is its exit code (2 an
    invalid spec, 3 the registry or BuildKit unavailable), ``error_class``
    its error class, ``argv`` the command run."""

    def __init__(self, message: str, code: int, error_class: str, argv: Sequence[str]):
        super().__init__(message)
        self.code = code
        self.error_class = error_class
        self.argv = list(argv)


@dataclass(frozen=True)
class BuildResult:
    """An image ispec found or built."""

    ref: str
    digest: str
    built: bool

    @property
    def pinned(self) -> str:
        """``ref@digest``: what a component runs on."""
        return f"{self.ref}@{self.digest}"


def spec_document(
    base_image: Optional[str] = None,
    packages_to_install: Optional[Sequence[str]] = None,
    *,
    name: str,
    registry: Optional[str] = None,
    pip_index_urls: Optional[Sequence[str]] = None,
    install_kfp_package: bool = True,
    kfp_package_path: Optional[str] = None,
    kfp_version: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    platform: Optional[str] = None,
) -> Dict[str, Any]:
    """The ispec spec of a component's image: ``base_image`` (KFP's default
    when None), ``packages_to_install`` as ``packages``, the first of
    ``pip_index_urls`` as ``pip_index`` and the others as
    ``pip_extra_index_url``. When ``install_kfp_package`` is true (KFP's
    default) the image also gets the component runtime: ``kfp_package_path``
    when given, else ``kfp==kfp_version`` (default: the version of the kfp
    installed here), so that the component can run with
    ``install_kfp_package=False``."""
    if not name:
        raise ValueError("name is required: the image's repository name")
    pkgs: List[str] = [p for p in (packages_to_install or [])]
    for i, p in enumerate(pkgs):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"packages_to_install[{i}]: expected a requirement string, found {p!r}")
    if install_kfp_package:
        pkgs.append(kfp_package_path or _kfp_requirement(kfp_version))
    doc: Dict[str, Any] = {"name": name, "base_image": base_image or DEFAULT_BASE_IMAGE}
    if registry:
        doc["registry"] = registry
    if pkgs:
        doc["packages"] = pkgs
    urls = list(pip_index_urls or [])
    if urls:
        doc["pip_index"] = urls[0]
    if urls[1:]:
        doc["pip_extra_index_url"] = urls[1:]
    if env:
        doc["env"] = dict(env)
    if platform:
        doc["platform"] = platform
    return doc


def _kfp_requirement(version: Optional[str]) -> str:
    if not version:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("kfp")
        except Exception:  # kfp is not installed here
            raise ValueError(
                "install_kfp_package=True needs the kfp version to put in the image: pass kfp_version=, "
                "or kfp_package_path=, or install_kfp_package=False when the base image has kfp"
            ) from None
    return f"kfp=={version}"


def build(
    doc: Dict[str, Any],
    *,
    ispec: Optional[str] = None,
    server: Optional[str] = None,
    args: Sequence[str] = (),
    cwd: Optional[str] = None,
    stderr=None,
) -> BuildResult:
    """Builds the spec ``doc`` once through ``ispec build --json`` (an
    argument vector, never a shell): ispec finds the image when it exists
    and builds it only when it is absent. ``ispec`` is the binary (default
    ``$ISPEC_BIN`` or ``ispec`` on PATH), ``server`` an ``ispec serve`` to
    build through (``--server``), ``args`` more arguments (``--registry``,
    ``--buildkit-addr``); ispec's progress goes to ``stderr`` (default
    sys.stderr) as it comes."""
    binary = ispec or os.environ.get("ISPEC_BIN") or "ispec"
    folder = cwd or os.getcwd()
    fd, path = tempfile.mkstemp(prefix=".ispec-kfp-", suffix=".json", dir=folder)
    argv = [binary, "build", "--json"]
    if server:
        argv += ["--server", server]
    argv += [*args, os.path.basename(path)]
    sink = stderr or sys.stderr
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        try:
            proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise IspecError(f"{binary} not found: install ispec on PATH or set ISPEC_BIN", 127, "", argv) from None
        tail: List[str] = []
        with proc:
            pump = threading.Thread(target=_pump, args=(proc.stderr, sink, tail), daemon=True)
            pump.start()
            try:
                out = proc.stdout.read().decode("utf-8", "replace")
                code = proc.wait()
            finally:
                pump.join()
    finally:
        os.unlink(path)
    rec = _last_record(out)
    err = rec.get("error") or {}
    if code != 0 or err:
        message = err.get("message") or "".join(tail[-10:]).strip() or f"ispec exited {code}"
        raise IspecError(message.replace(os.path.basename(path), f'the image of {doc.get("name")!r}'), code or 1, err.get("class", ""), argv)
    if not rec.get("ref") or not rec.get("digest"):
        raise IspecError(f"ispec build printed no image: {out.strip()!r}", 1, "", argv)
    return BuildResult(ref=rec["ref"], digest=rec["digest"], built=bool(rec.get("built")))


def _pump(src, sink, tail: List[str]) -> None:
    for raw in iter(src.readline, b""):
        line = raw.decode("utf-8", "replace")
        tail.append(line)
        del tail[:-50]
        sink.write(line)
        sink.flush()


def _last_record(out: str) -> Dict[str, Any]:
    for line in reversed(out.splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            return rec
    return {}


def component_kwargs(
    *,
    name: Optional[str] = None,
    func: Optional[Callable] = None,
    registry: Optional[str] = None,
    kfp_version: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    platform: Optional[str] = None,
    ispec: Optional[str] = None,
    server: Optional[str] = None,
    ispec_args: Sequence[str] = (),
    cwd: Optional[str] = None,
    stderr=None,
    **kwargs: Any,
) -> Dict[str, Any]:
    """The arguments of ``kfp.dsl.component`` for a component whose image
    ispec builds: ``kwargs`` are dsl.component's own; ``base_image``,
    ``packages_to_install``, ``pip_index_urls``, ``install_kfp_package``
    and ``kfp_package_path`` make the image (see spec_document), which is
    built once (see build). The result has ``base_image`` set to the
    image's ``ref@digest``, ``install_kfp_package=False``, no
    ``packages_to_install`` nor ``pip_index_urls``, and every other
    argument as given. ``name`` names the image (default: the function's
    name, else ``kfp-component``)."""
    if kwargs.get("pip_trusted_hosts"):
        raise ValueError("pip_trusted_hosts: ispec talks to package indexes over TLS or to http:// URLs in pip_index_urls; drop it")
    if name is None:
        name = _NAME_BAD.sub("-", (getattr(func, "__name__", "") or "kfp-component").lower().replace("_", "-")).strip("-._") or "kfp-component"
    doc = spec_document(
        kwargs.get("base_image"),
        kwargs.get("packages_to_install"),
        name=name,
        registry=registry,
        pip_index_urls=kwargs.get("pip_index_urls"),
        install_kfp_package=kwargs.get("install_kfp_package", True),
        kfp_package_path=kwargs.get("kfp_package_path"),
        kfp_version=kfp_version,
        env=env,
        platform=platform,
    )
    res = build(doc, ispec=ispec, server=server, args=ispec_args, cwd=cwd, stderr=stderr)
    out = {k: v for k, v in kwargs.items() if k not in _CONSUMED}
    out["base_image"] = res.pinned
    out["install_kfp_package"] = False
    return out


def component(func: Optional[Callable] = None, *, dsl_component: Optional[Callable] = None, **kwargs: Any):
    """``kfp.dsl.component`` on an image ispec builds: the same arguments
    (plus component_kwargs's: ``registry``, ``name``, ``server``, ...), used
    bare or with arguments, as dsl.component is. ``dsl_component`` is the
    decorator to call (default ``kfp.dsl.component``)."""

    def wrap(f: Callable):
        deco = dsl_component
        if deco is None:
            from kfp import dsl  # kfp is needed only here

            deco = dsl.component
        return deco(f, **component_kwargs(func=f, **kwargs))

    if func is not None:
        return wrap(func)
    return wrap
