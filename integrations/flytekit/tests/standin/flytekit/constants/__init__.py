"""Stand-in for flytekit.constants (flytekit 1.16.24)."""

from enum import Enum


class CopyFileDetection(Enum):
    LOADED_MODULES = 1
    ALL = 2
    NO_COPY = 3
