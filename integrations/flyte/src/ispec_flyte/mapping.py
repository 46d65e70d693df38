"""A flyte.Image as an ispec spec: its base, platforms and name, and its
layers one to one as the spec's ``layers:`` items, in order.

| flyte-sdk layer | ispec layer item |
| --- | --- |
| PipPackages (with_pip_packages) | ``packages`` + ``pip_index``, ``pip_extra_index_url``, ``pre``, ``pip_extra_args`` |
| Requirements (with_requirements) | ``requirements`` + the same pip options |
| PythonWheels (with_local_v2) | ``python_wheels`` (the folder) + the same pip options |
| UVProject (with_uv_project) | ``uv_project: {pyproject, uvlock}`` |
| AptPackages (with_apt_packages) | ``apt_packages`` |
| Commands (with_commands) | ``commands`` |
| Env (with_env_vars) | ``env`` |
| WorkDir (with_workdir) | ``workdir`` |
| CopyConfig (with_source_folder, with_source_file) | ``copy: [{src, dst}]`` |

What has no ispec equivalent is refused with an IspecError that names
the layer (see docs): Poetry, pixi and uv-script layers, a uv project
installed as a project or without uv.lock, secrets on apt and commands
layers, raw Dockerfile lines other than labels, and Dockerfile-based
images.
"""

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import INVALID, IspecError

#: The folder flyte-sdk's non-root images work in, and their user.
FLYTE_HOME = "/home/flyte"
FLYTE_USER = "flyte"

#: Prefix of the files the plugin writes into the project while ispec
#: runs (the spec, secret values); ispec reads only files in the spec's
#: folder.
TEMP_PREFIX = ".ispec-flyte-"

_LABEL = re.compile(r"""^LABEL\s+([A-Za-z0-9._/-]+)=(?:'([^']*)'|"([^"]*)"|(\S+))\s*$""")
_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
_WHEEL = re.compile(r"^([^-]+)-[^-]+-.*\.whl$", re.I)


@dataclass
class SecretFile:
    """A secret whose value ispec gives pip: written to ``source`` (in the
    project, for the time ispec runs) from flyte-sdk's build-time sources
    of the secret (the env variable ``GROUP_KEY``, else the file
    /etc/secrets/group_key), and mounted as the file ``target`` or given
    as the env variable ``env`` while that layer's pip runs."""

    secret: Any
    source: str
    target: str = ""
    env: str = ""

    def item(self):
        """The secret as a ``pip_secret_mounts`` entry."""
        if self.env:
            return {"source": self.source, "env": self.env}
        return [self.source, self.target]


@dataclass
class Mapping:
    """The spec document of an image and the secret files it mounts."""

    doc: Dict[str, Any]
    secrets: List[SecretFile] = field(default_factory=list)


def _label(image) -> str:
    return f"flyte.Image {image.name or image.base_image!r}"


def _where(image, i: int, layer) -> str:
    return f"{_label(image)}: layer {i} ({type(layer).__name__})"


def _inside(path: str, folder: str) -> Optional[str]:
    rel = os.path.relpath(path, folder)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel


def project_path(path, project: str, where: str) -> str:
    """path (relative to the current folder, as flyte-sdk reads it, or
    absolute) as the spec in project writes it; a path outside project is
    an IspecError (ispec reads only files in its spec's folder)."""
    absolute = os.path.abspath(os.fspath(path))
    rel = _inside(absolute, project)
    if rel is None:
        rel = _inside(os.path.realpath(absolute), os.path.realpath(project))
    if rel is None:
        raise IspecError(
            f"{where}: {os.fspath(path)} is outside the project {project}: ispec reads only files under "
            f"the project folder (the current folder, flyte.init's root_dir, or the builder's project=); "
            f"move it there or build from a folder that holds it",
            INVALID,
            "invalid",
        )
    return "." if rel == "." else rel.replace(os.sep, "/")


def _pip_options(layer) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if layer.index_url:
        out["pip_index"] = layer.index_url
    if layer.extra_index_urls:
        urls = layer.extra_index_urls
        out["pip_extra_index_url"] = [urls] if isinstance(urls, str) else list(urls)
    if layer.pre:
        out["pre"] = True
    if layer.extra_args:
        out["pip_extra_args"] = layer.extra_args
    return out


def _secret_env_name(secret) -> str:
    return "_".join(k.upper() for k in (secret.group, secret.key) if k)


def _secret_file_name(secret) -> str:
    return "_".join(k for k in (secret.group, secret.key) if k)


def secret_value(secret) -> bytes:
    """A secret's value where flyte-sdk's docker builder reads it at build
    time: the env variable GROUP_KEY (upper-cased), else the file
    /etc/secrets/group_key."""
    env = _secret_env_name(secret)
    if os.environ.get(env):
        return os.environ[env].encode()
    path = f"/etc/secrets/{_secret_file_name(secret)}"
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise IspecError(f"secret {secret.key!r} not found in env variable {env} or file {path}", INVALID, "invalid") from None


def _secrets(image, i: int, layer, pip: bool) -> List[SecretFile]:
    from flyte import Secret

    where = _where(image, i, layer)
    out = []
    for s in getattr(layer, "secret_mounts", None) or ():
        secret = Secret(key=s) if isinstance(s, str) else s
        if not pip:
            raise IspecError(
                f"{where}: secret {secret.key!r}: ispec mounts secrets only while pip installs; "
                f"install what needs it in a pip layer, or drop the secret",
                INVALID,
                "invalid",
            )
        digest = hashlib.sha256(f"{secret.group}|{secret.key}".encode()).hexdigest()[:16]
        source = f"{TEMP_PREFIX}secret-{digest}"
        if secret.mount:
            out.append(SecretFile(secret=secret, source=source, target=str(secret.mount)))
        else:
            # As flyte-sdk's Docker builder: the secret's as_env_var, else
            # GROUP_KEY.
            env = secret.as_env_var or "_".join(k for k in (secret.group, secret.key) if k)
            out.append(SecretFile(secret=secret, source=source, env=env))
    return out


def _wheels(image, i: int, layer, project: str) -> str:
    where = _where(image, i, layer)
    folder = project_path(layer.wheel_dir, project, where)
    want = layer.package_name.replace("-", "_").lower()
    names = sorted(p for p in os.listdir(layer.wheel_dir) if p.lower().endswith(".whl")) if os.path.isdir(layer.wheel_dir) else []
    if not names:
        raise IspecError(f"{where}: no wheels in {os.fspath(layer.wheel_dir)}", INVALID, "invalid")
    other = [n for n in names if (_WHEEL.match(n) or [None, ""])[1].lower() != want]
    if other or len(names) > 1:
        raise IspecError(
            f"{where}: ispec installs every wheel of {os.fspath(layer.wheel_dir)}, and it holds "
            f"{', '.join(names)}; keep only the {layer.package_name} wheel to install there",
            INVALID,
            "invalid",
        )
    return folder


def _env_items(env_vars: Tuple[Tuple[str, str], ...]) -> List[Dict[str, Any]]:
    """One env item, or several when a value names a variable set before it
    in the same layer: Dockerfile sets each ENV line on the ones before,
    an ispec env item expands against the env before the item."""
    items: List[Dict[str, str]] = [{}]
    for k, v in env_vars:
        refs = {a or b for a, b in _ENV_REF.findall(v)}
        if refs & set(items[-1]) or k in items[-1]:
            items.append({})
        items[-1][k] = v
    return [{"env": e} for e in items]


def _creates_flyte_user(image) -> bool:
    from flyte._image import _CREATE_FLYTE_USER_CMD, Commands

    return any(isinstance(l, Commands) and _CREATE_FLYTE_USER_CMD in l.commands for l in image._layers)


def spec_document(image, project: Optional[str] = None) -> Mapping:
    """The ispec spec of image, its paths relative to project (default: the
    current folder), and the secret files it mounts."""
    from flyte import _image as fi

    project = os.path.abspath(project or os.getcwd())
    if image.dockerfile:
        raise IspecError(f"{_label(image)}: built from a Dockerfile; ispec builds from layers only", INVALID, "invalid")
    if not image.base_image:
        raise IspecError(f"{_label(image)}: no base image", INVALID, "invalid")
    doc: Dict[str, Any] = {"base_image": image.base_image}
    if image.name:
        doc["name"] = image.name
    if image.registry:
        doc["registry"] = image.registry
    doc["python_version"] = f"{image.python_version[0]}.{image.python_version[1]}"
    doc["platform"] = list(image.platform)
    flyte_user = _creates_flyte_user(image)
    # flyte-sdk's docker builder runs as root, and switches to the flyte
    # user and its home at the end when the image made that user.
    doc["user"] = FLYTE_USER if flyte_user else "root"
    labels: Dict[str, str] = {}
    layers: List[Dict[str, Any]] = []
    secrets: List[SecretFile] = []
    workdir: Optional[str] = None
    for i, layer in enumerate(image._layers):
        where = _where(image, i, layer)
        # Subclasses first: Requirements is a PipPackages.
        if isinstance(layer, fi.Requirements):
            layers.append({"requirements": project_path(layer.file, project, where), **_pip_options(layer)})
            secrets += _layer_secrets(layers[-1], _secrets(image, i, layer, pip=True))
        elif isinstance(layer, fi.PipPackages):
            if not layer.packages:
                raise IspecError(f"{where}: no packages", INVALID, "invalid")
            layers.append({"packages": list(layer.packages), **_pip_options(layer)})
            secrets += _layer_secrets(layers[-1], _secrets(image, i, layer, pip=True))
        elif isinstance(layer, fi.PythonWheels):
            layers.append({"python_wheels": _wheels(image, i, layer, project), **_pip_options(layer)})
            secrets += _layer_secrets(layers[-1], _secrets(image, i, layer, pip=True))
        elif isinstance(layer, fi.UVProject):
            layers.append(_uv_item(image, i, layer, project))
        elif isinstance(layer, fi.AptPackages):
            _secrets(image, i, layer, pip=False)
            layers.append({"apt_packages": list(layer.packages)})
        elif isinstance(layer, fi.Commands):
            _secrets(image, i, layer, pip=False)
            layers.append({"commands": list(layer.commands)})
        elif isinstance(layer, fi.WorkDir):
            workdir = _workdir(layer.workdir, workdir, where)
            layers.append({"workdir": workdir})
        elif isinstance(layer, fi.CopyConfig):
            layers.append({"copy": [{"src": project_path(layer.src, project, where), "dst": _copy_dst(layer)}]})
        elif isinstance(layer, fi.Env):
            if layer.env_vars:
                layers += _env_items(layer.env_vars)
        elif isinstance(layer, fi._DockerLines):
            labels.update(_labels(layer, where))
        elif isinstance(layer, fi.DockerIgnore):
            if os.path.basename(layer.path) != ".dockerignore":
                raise IspecError(
                    f"{where}: {layer.path}: ispec reads the .dockerignore (and .ispecignore) at the root of each "
                    f"copied folder; name the file .dockerignore and put it there",
                    INVALID,
                    "invalid",
                )
        else:
            raise IspecError(f"{where}: ispec has no layer of this kind", INVALID, "invalid")
    if flyte_user:
        layers.append({"workdir": FLYTE_HOME})
    if labels:
        doc["labels"] = labels
    if layers:
        doc["layers"] = layers
    return Mapping(doc=doc, secrets=_unique(secrets))


def _layer_secrets(item: Dict[str, Any], secrets: List[SecretFile]) -> List[SecretFile]:
    """Mounts a pip layer's secrets in that layer only (its own
    pip_secret_mounts), as flyte-sdk's Docker builder mounts them in that
    layer's RUN only; returns them."""
    secrets = _unique(secrets)
    if secrets:
        item["pip_secret_mounts"] = [s.item() for s in secrets]
    return secrets


def _unique(secrets: List[SecretFile]) -> List[SecretFile]:
    seen, out = set(), []
    for s in secrets:
        if (s.source, s.target, s.env) not in seen:
            seen.add((s.source, s.target, s.env))
            out.append(s)
    return out


def _uv_item(image, i: int, layer, project: str) -> Dict[str, Any]:
    where = _where(image, i, layer)
    if layer.project_install_mode != "dependencies_only":
        raise IspecError(
            f"{where}: project_install_mode={layer.project_install_mode!r}: ispec installs a uv project's locked "
            f"dependencies only; install the project itself with with_source_folder and a pip layer",
            INVALID,
            "invalid",
        )
    if layer.uvlock is None:
        raise IspecError(f"{where}: no uv.lock: ispec installs a uv project from its lock file (uv lock makes it)", INVALID, "invalid")
    if layer.index_url or layer.extra_index_urls or layer.pre or layer.extra_args or layer.secret_mounts:
        raise IspecError(
            f"{where}: index_url, extra_index_urls, pre, extra_args and secret_mounts are not used by ispec's uv "
            f"layer (uv sync --frozen installs what uv.lock names, from where it names); drop them",
            INVALID,
            "invalid",
        )
    return {
        "uv_project": {
            "pyproject": project_path(layer.pyproject, project, where),
            "uvlock": project_path(layer.uvlock, project, where),
        }
    }


def _workdir(w: str, before: Optional[str], where: str) -> str:
    if posixpath.isabs(w):
        return posixpath.normpath(w)
    if before is None:
        raise IspecError(
            f"{where}: {w!r} is relative, and ispec cannot tell the base image's working directory; give an absolute path",
            INVALID,
            "invalid",
        )
    return posixpath.normpath(posixpath.join(before, w))


def _copy_dst(layer) -> str:
    """Dockerfile COPY's destination as ispec's copy takes it: a file copied
    to "." (or a path ending in /) goes into that folder."""
    dst = layer.dst or "."
    if layer.path_type == 0 and (dst in (".", "..") or dst.endswith("/.")):
        return dst + "/"
    return dst


def _labels(layer, where: str) -> Dict[str, str]:
    out = {}
    for line in layer.lines:
        m = _LABEL.match(line.strip())
        if not m:
            raise IspecError(f"{where}: {line!r}: ispec takes only LABEL lines (one label each) of raw Dockerfile lines", INVALID, "invalid")
        out[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
    return out
