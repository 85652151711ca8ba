"""Files shipped with the twin, found from any folder and in any kind of install.

``default.yaml`` is a link to ``configs/default.yaml`` (the source of truth, with every
default sourced); a wheel carries a copy of it, an editable install reads it through the link.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_config() -> Path:
    """The default fleet config (``configs/default.yaml``) as shipped with the package."""
    return Path(str(resources.files(__name__) / "default.yaml"))
