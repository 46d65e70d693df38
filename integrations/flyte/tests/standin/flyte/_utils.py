"""Stand-in of the hashing helpers flyte._image uses for its tag."""

import os
from pathlib import Path


def filehash_update(path: Path, hasher) -> None:
    """Adds a file's bytes to hasher."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            hasher.update(chunk)


def update_hasher_for_source(source: Path, hasher, ignore=None) -> None:
    """Adds a file, or every file of a folder (relative path and bytes, in
    sorted order), to hasher."""
    source = Path(source)
    if source.is_file():
        filehash_update(source, hasher)
        return
    for root, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            hasher.update(str(p.relative_to(source)).encode())
            filehash_update(p, hasher)
