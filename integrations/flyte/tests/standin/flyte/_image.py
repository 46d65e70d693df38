"""Stand-in of flyte._image (flyte-sdk 2.6.5): flyte.Image and its layer
dataclasses, with flyte-sdk's names, fields and defaults. Each with_*
call clones the image with one more layer; the tag is an md5 of the base
image and every layer (files included), as flyte-sdk computes it."""

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Literal, Optional, Tuple, Union

from ._secret import Secret, SecretRequest

CopyConfigType = Literal[0, 1]  # 0 a file, 1 a folder
SOURCE_ROOT = Path(__file__).parent.parent.parent
DIST_FOLDER = SOURCE_ROOT / "dist"

Architecture = Literal["linux/amd64", "linux/arm64"]

_BASE_REGISTRY = "ghcr.io/flyteorg"
_DEFAULT_IMAGE_NAME = "flyte"
_CREATE_FLYTE_USER_CMD = (
    "if ! id -u flyte >/dev/null 2>&1; then"
    " useradd --create-home --shell /bin/bash flyte; fi &&"
    " mkdir -p /home/flyte &&"
    " chown -R flyte:flyte /home/flyte &&"
    " chown -R flyte:flyte /root"
)


def _ensure_tuple(val) -> tuple:
    if isinstance(val, list):
        return tuple(val)
    if isinstance(val, tuple):
        return val
    return (val,)


def _text(hasher, *parts) -> None:
    hasher.update("".join(str(p) for p in parts if p).encode())


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One layer of an image. Layers are hashable: lists are refused."""

    def __post_init__(self):
        import dataclasses

        for f in dataclasses.fields(self):
            if isinstance(getattr(self, f.name), list):
                raise TypeError(f"{type(self).__name__} field '{f.name}' is a list; pass items as separate arguments")

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        raise NotImplementedError

    def validate(self):
        pass


@dataclass(kw_only=True, frozen=True)
class PipOption:
    index_url: Optional[str] = None
    extra_index_urls: Optional[Tuple[str, ...]] = None
    pre: bool = False
    extra_args: Optional[str] = None
    secret_mounts: Optional[Tuple[Union[str, Secret], ...]] = None

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, self.index_url, *(self.extra_index_urls or ()), self.pre, self.extra_args, *(self.secret_mounts or ()))


@dataclass(kw_only=True, frozen=True)
class PipPackages(PipOption, Layer):
    packages: Optional[Tuple[str, ...]] = None

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        super().update_hash(hasher, ignore)
        _text(hasher, *(self.packages or ()))


@dataclass(kw_only=True, frozen=True)
class PythonWheels(PipOption, Layer):
    wheel_dir: Path
    wheel_dir_name: str = field(init=False)
    package_name: str

    def __post_init__(self):
        object.__setattr__(self, "wheel_dir_name", self.wheel_dir.name)

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        from ._utils import filehash_update

        super().update_hash(hasher, ignore)
        for wheel in self.wheel_dir.glob("*.whl"):
            if wheel.is_file():
                filehash_update(wheel, hasher)


@dataclass(kw_only=True, frozen=True)
class Requirements(PipPackages):
    file: Path

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        from ._utils import filehash_update

        super().update_hash(hasher, ignore)
        filehash_update(self.file, hasher)


@dataclass(frozen=True)
class UVProject(PipOption, Layer):
    pyproject: Path
    uvlock: Optional[Path] = None
    project_install_mode: Literal["dependencies_only", "install_project"] = "dependencies_only"

    def validate(self):
        if not self.pyproject.is_file():
            raise FileNotFoundError(f"pyproject.toml file {self.pyproject} does not exist")
        if self.uvlock is not None and not self.uvlock.exists():
            raise ValueError(f"UVLock file {self.uvlock} does not exist")

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        from ._utils import filehash_update, update_hasher_for_source

        super().update_hash(hasher, ignore)
        if self.project_install_mode == "dependencies_only":
            if self.uvlock is not None:
                filehash_update(self.uvlock, hasher)
            filehash_update(self.pyproject, hasher)
        else:
            update_hasher_for_source(self.pyproject.parent, hasher)


@dataclass(frozen=True)
class PoetryProject(Layer):
    pyproject: Path
    poetry_lock: Path
    extra_args: Optional[str] = None
    project_install_mode: Literal["dependencies_only", "install_project"] = "dependencies_only"
    secret_mounts: Optional[Tuple[Union[str, Secret], ...]] = None

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        from ._utils import filehash_update

        _text(hasher, self.extra_args)
        filehash_update(self.poetry_lock, hasher)
        filehash_update(self.pyproject, hasher)


@dataclass(frozen=True)
class AptPackages(Layer):
    packages: Tuple[str, ...]
    secret_mounts: Optional[Tuple[Union[str, Secret], ...]] = None

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, *self.packages, *(self.secret_mounts or ()))


@dataclass(frozen=True)
class Commands(Layer):
    commands: Tuple[str, ...]
    secret_mounts: Optional[Tuple[Union[str, Secret], ...]] = None

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, *self.commands, *(self.secret_mounts or ()))


@dataclass(frozen=True)
class WorkDir(Layer):
    workdir: str

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, self.workdir)


@dataclass(frozen=True)
class DockerIgnore(Layer):
    path: str

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, self.path)


@dataclass(frozen=True)
class CopyConfig(Layer):
    path_type: CopyConfigType
    src: Path
    dst: str

    def __post_init__(self):
        if self.path_type not in (0, 1):
            raise ValueError(f"Invalid path_type {self.path_type}, must be 0 (file) or 1 (directory)")
        if not isinstance(self.src, Path):
            object.__setattr__(self, "src", Path(self.src))

    def validate(self):
        from .errors import ImageBuildError

        if not self.src.exists():
            raise ImageBuildError(f"Source folder {self.src.absolute()} does not exist")

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        from ._utils import update_hasher_for_source

        update_hasher_for_source(self.src, hasher)
        _text(hasher, self.dst)


@dataclass(frozen=True)
class _DockerLines(Layer):
    """Internal: raw Dockerfile lines of the default images (labels)."""

    lines: Tuple[str, ...]

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        _text(hasher, *self.lines)


@dataclass(frozen=True)
class Env(Layer):
    env_vars: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)

    def update_hash(self, hasher, ignore: Optional[Any] = None):
        hasher.update(" ".join(f"{k}={v}" for k, v in self.env_vars).encode())

    @classmethod
    def from_dict(cls, envs: Dict[str, str]) -> "Env":
        return cls(env_vars=tuple(envs.items()))


def _detect_python_version() -> Tuple[int, int]:
    return sys.version_info.major, sys.version_info.minor


@dataclass(frozen=True, eq=True)
class Image:
    """An image: a base (from_* constructors) and ordered layers (with_*
    methods, each returning a new Image)."""

    base_image: Optional[str] = None
    dockerfile: Optional[Path] = None
    registry: Optional[str] = None
    name: Optional[str] = None
    platform: Tuple[str, ...] = ("linux/amd64",)
    python_version: Tuple[int, int] = field(default_factory=_detect_python_version)
    extendable: bool = False
    _is_cloned: bool = False
    _ref_name: Optional[str] = None
    _layers: Tuple[Layer, ...] = field(default_factory=tuple)
    _tag: Optional[str] = field(default=None, init=False)
    _image_registry_secret: Optional[Secret] = None

    _token: ClassVar[object] = object()

    def __post_init__(self):
        if object.__getattribute__(self, "__dict__").pop("_guard", None) is not Image._token:
            raise TypeError("Direct instantiation of Image not allowed, use one of the from_...() methods")

    @classmethod
    def _new(cls, **kwargs) -> "Image":
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_guard", cls._token)
        cls.__init__(obj, **kwargs)
        return obj

    def validate(self):
        for layer in self._layers:
            layer.validate()

    @classmethod
    def _get_default_image_for(cls, python_version, flyte_version=None, install_flyte=True, platform=None) -> "Image":
        from ._version import __version__

        dev_mode = (__version__ and "dev" in __version__) and not flyte_version and install_flyte
        platform = ("linux/amd64", "linux/arm64") if platform is None else platform
        if not install_flyte:
            preset_tag = f"py{python_version[0]}.{python_version[1]}"
        else:
            version = flyte_version or __version__.replace("+", "-")
            suffix = version if version.startswith("v") else f"v{version}"
            preset_tag = f"py{python_version[0]}.{python_version[1]}-{suffix}"
            if not dev_mode:
                # The released default image: it exists already.
                return Image._new(
                    base_image=f"{_BASE_REGISTRY}/{_DEFAULT_IMAGE_NAME}:{preset_tag}",
                    name=_DEFAULT_IMAGE_NAME,
                    python_version=python_version,
                    platform=platform,
                    extendable=True,
                )
        image = Image._new(
            base_image=f"python:{python_version[0]}.{python_version[1]}-slim-bookworm",
            name=_DEFAULT_IMAGE_NAME,
            python_version=python_version,
            platform=platform,
            extendable=True,
        )
        image = image.clone(
            addl_layer=_DockerLines(
                (
                    "LABEL org.opencontainers.image.authors='Union.AI <info@union.ai>'",
                    "LABEL org.opencontainers.image.source=https://github.com/flyteorg/flyte",
                )
            )
        )
        image = image.clone(addl_layer=Commands(commands=(_CREATE_FLYTE_USER_CMD,)))
        image = image.clone(addl_layer=WorkDir(workdir="/home/flyte"))
        image = image.with_env_vars(
            {"VIRTUAL_ENV": "/opt/venv", "PATH": "/opt/venv/bin:$PATH", "PYTHONPATH": "/root", "UV_LINK_MODE": "copy"}
        )
        image = image.with_apt_packages("build-essential", "ca-certificates")
        if dev_mode:
            image = image.with_local_v2()
        else:
            object.__setattr__(image, "_tag", preset_tag)
        return image

    @classmethod
    def from_debian_base(
        cls,
        python_version: Optional[Tuple[int, int]] = None,
        flyte_version: Optional[str] = None,
        install_flyte: bool = True,
        registry: Optional[str] = None,
        registry_secret: Optional[Union[str, Secret]] = None,
        name: Optional[str] = None,
        platform: Optional[Tuple[str, ...]] = None,
    ) -> "Image":
        base = cls._get_default_image_for(
            python_version=python_version or _detect_python_version(),
            flyte_version=flyte_version,
            install_flyte=install_flyte,
            platform=platform,
        )
        if registry or name:
            return base.clone(registry=registry, name=name, registry_secret=registry_secret, extendable=True)
        return base

    @classmethod
    def from_base(cls, image_uri: str) -> "Image":
        return cls._new(base_image=image_uri)

    @classmethod
    def from_dockerfile(cls, file: Union[Path, str], registry: str, name: str, platform=None) -> "Image":
        kwargs: Dict[str, Any] = dict(dockerfile=Path(file), registry=registry, name=name, _is_cloned=True)
        if platform:
            kwargs["platform"] = _ensure_tuple(platform)
        return cls._new(**kwargs)

    def clone(
        self,
        registry: Optional[str] = None,
        registry_secret: Optional[Union[str, Secret]] = None,
        name: Optional[str] = None,
        base_image: Optional[str] = None,
        python_version: Optional[Tuple[int, int]] = None,
        addl_layer: Optional[Layer] = None,
        extendable: Optional[bool] = None,
        platform: Union[str, Tuple[str, ...], None] = None,
    ) -> "Image":
        if addl_layer and not self.extendable:
            raise ValueError("Cannot add additional layers to a non-extendable image. Use clone(extendable=True).")
        if addl_layer and self.dockerfile:
            raise ValueError("Flyte cannot add layers to a Dockerfile-based Image.")
        name = name or self.name
        if addl_layer and not name:
            raise ValueError(f"Cannot add additional layer {addl_layer} to an image without name. Please first clone().")
        secret = registry_secret or self._image_registry_secret
        return Image._new(
            base_image=base_image or self.base_image,
            dockerfile=self.dockerfile,
            registry=registry or self.registry,
            name=name,
            platform=_ensure_tuple(platform) if platform else self.platform,
            python_version=python_version or self.python_version,
            extendable=extendable if extendable is not None else self.extendable,
            _is_cloned=True,
            _layers=(*self._layers, addl_layer) if addl_layer else self._layers,
            _image_registry_secret=Secret(key=secret) if isinstance(secret, str) else secret,
            _ref_name=self._ref_name,
        )

    def _get_hash_digest(self) -> str:
        from ._utils import filehash_update

        hasher = hashlib.md5()
        if self.base_image:
            hasher.update(self.base_image.encode())
        if self.dockerfile:
            filehash_update(self.dockerfile, hasher)
        for layer in self._layers:
            layer.update_hash(hasher)
        return hasher.hexdigest()

    @property
    def _final_tag(self) -> str:
        return self._tag or self._get_hash_digest() or "latest"

    @property
    def uri(self) -> str:
        if not self._is_cloned:
            return self.base_image
        if self.registry:
            return f"{self.registry}/{self.name}:{self._final_tag}"
        return f"{self.name}:{self._final_tag}"

    def with_workdir(self, workdir: str) -> "Image":
        return self.clone(addl_layer=WorkDir(workdir=workdir))

    def with_requirements(
        self,
        file: Union[str, Path],
        index_url: Optional[str] = None,
        extra_index_urls: Union[str, List[str], Tuple[str, ...], None] = None,
        pre: bool = False,
        extra_args: Optional[str] = None,
        secret_mounts: Optional[SecretRequest] = None,
    ) -> "Image":
        file = Path(file)
        if file.suffix != ".txt":
            raise ValueError(f"Requirements file {file} must have a .txt extension")
        return self.clone(
            addl_layer=Requirements(
                file=file,
                index_url=index_url,
                extra_index_urls=_ensure_tuple(extra_index_urls) if extra_index_urls else None,
                pre=pre,
                extra_args=extra_args,
                secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None,
            )
        )

    def with_pip_packages(
        self,
        *packages: str,
        index_url: Optional[str] = None,
        extra_index_urls: Union[str, List[str], Tuple[str, ...], None] = None,
        pre: bool = False,
        extra_args: Optional[str] = None,
        secret_mounts: Optional[SecretRequest] = None,
    ) -> "Image":
        return self.clone(
            addl_layer=PipPackages(
                packages=packages or None,
                index_url=index_url,
                extra_index_urls=_ensure_tuple(extra_index_urls) if extra_index_urls else None,
                pre=pre,
                extra_args=extra_args,
                secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None,
            )
        )

    def with_env_vars(self, env_vars: Dict[str, str]) -> "Image":
        return self.clone(addl_layer=Env.from_dict(env_vars))

    def with_source_folder(self, src: Path, dst: str = ".", copy_contents_only: bool = False) -> "Image":
        if not copy_contents_only:
            dst = str("./" + src.name) if dst == "." else dst
        return self.clone(addl_layer=CopyConfig(path_type=1, src=src, dst=dst))

    def with_source_file(self, src: Union[Path, List[Path]], dst: str = ".") -> "Image":
        if isinstance(src, list):
            names = [p.name for p in src]
            if len(set(names)) != len(names):
                raise ValueError(f"Multiple files with the same name would overwrite each other at '{dst}'")
            image = self
            for p in src:
                image = image.clone(addl_layer=CopyConfig(path_type=0, src=p, dst=dst))
            return image
        return self.clone(addl_layer=CopyConfig(path_type=0, src=src, dst=dst))

    def with_dockerignore(self, path: Path) -> "Image":
        return self.clone(addl_layer=DockerIgnore(path=str(path)))

    def with_uv_project(
        self,
        pyproject_file: Union[str, Path],
        uvlock: Optional[Path] = None,
        index_url: Optional[str] = None,
        extra_index_urls: Union[List[str], Tuple[str, ...], None] = None,
        pre: bool = False,
        extra_args: Optional[str] = None,
        secret_mounts: Optional[SecretRequest] = None,
        project_install_mode: Literal["dependencies_only", "install_project"] = "dependencies_only",
    ) -> "Image":
        pyproject_file = Path(pyproject_file)
        if uvlock is None and (pyproject_file.parent / "uv.lock").exists():
            uvlock = pyproject_file.parent / "uv.lock"
        return self.clone(
            addl_layer=UVProject(
                pyproject=pyproject_file,
                uvlock=uvlock,
                index_url=index_url,
                extra_index_urls=extra_index_urls,
                pre=pre,
                extra_args=extra_args,
                secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None,
                project_install_mode=project_install_mode,
            )
        )

    def with_poetry_project(self, pyproject_file, poetry_lock=None, extra_args=None, secret_mounts=None,
                            project_install_mode="dependencies_only") -> "Image":
        pyproject_file = Path(pyproject_file)
        return self.clone(
            addl_layer=PoetryProject(
                pyproject=pyproject_file,
                poetry_lock=poetry_lock or pyproject_file.parent / "poetry.lock",
                extra_args=extra_args,
                secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None,
                project_install_mode=project_install_mode,
            )
        )

    def with_apt_packages(self, *packages: str, secret_mounts: Optional[SecretRequest] = None) -> "Image":
        return self.clone(
            addl_layer=AptPackages(packages=packages, secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None)
        )

    def with_commands(self, commands: List[str], secret_mounts: Optional[SecretRequest] = None) -> "Image":
        return self.clone(
            addl_layer=Commands(
                commands=_ensure_tuple(commands), secret_mounts=_ensure_tuple(secret_mounts) if secret_mounts else None
            )
        )

    def with_local_v2(self) -> "Image":
        return self.clone(addl_layer=PythonWheels(wheel_dir=DIST_FOLDER, package_name="flyte"))
