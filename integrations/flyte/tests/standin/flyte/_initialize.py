"""Stand-in of flyte._initialize: the configuration flyte.init records
(here only what the image build engine reads)."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class _InitConfig:
    image_builder: str = "local"
    image_registry: Optional[str] = None
    root_dir: Optional[str] = None


_config: Optional[_InitConfig] = None


def init(image_builder: str = "local", image_registry: Optional[str] = None, root_dir: Optional[str] = None) -> None:
    global _config
    _config = _InitConfig(image_builder=image_builder, image_registry=image_registry, root_dir=root_dir)


def _get_init_config() -> Optional[_InitConfig]:
    return _config
