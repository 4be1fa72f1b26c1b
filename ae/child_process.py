"""The environment for a `python -m ae.<module>` child of this package (the training worker, the
dataset split reader): this checkout's ae first on its path, whatever the parent's working folder."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds ae/


def child_env(**extra: str) -> dict[str, str]:
    """os.environ plus `extra`, with PACKAGE_ROOT ahead of any PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | extra | {"PYTHONPATH": path}
