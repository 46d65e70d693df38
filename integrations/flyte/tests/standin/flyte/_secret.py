"""Stand-in of flyte._secret.Secret (flyte-sdk 2.6.5): a secret named by
key (and group), given to a build as an env variable (as_env_var, by
default KEY upper-cased) or as a file at mount (only /etc/flyte/secrets
is accepted)."""

import hashlib
import pathlib
import re
from dataclasses import dataclass
from typing import List, Optional, Union

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MOUNT = "/etc/flyte/secrets"


@dataclass
class Secret:
    key: str
    group: Optional[str] = None
    mount: Optional[pathlib.Path] = None
    as_env_var: Optional[str] = None

    def __post_init__(self):
        if not self.mount and not self.as_env_var:
            name = f"{self.group}_{self.key}" if self.group else self.key
            self.as_env_var = name.replace("-", "_").upper()
        if self.mount and str(self.mount) != _MOUNT:
            raise ValueError(f"Only {_MOUNT} is supported as secret mount path today.")
        if self.as_env_var is not None and not _ENV_NAME.match(self.as_env_var):
            raise ValueError(f"Invalid environment variable name: {self.as_env_var}")

    def stable_hash(self) -> str:
        parts = (self.key, self.group or "", str(self.mount) if self.mount else "", self.as_env_var or "")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def __hash__(self) -> int:
        return int(self.stable_hash()[:16], 16)


SecretRequest = Union[str, Secret, List[Union[str, Secret]]]
