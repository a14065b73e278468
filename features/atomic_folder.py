"""A folder of parts written whole or not at all: built hidden beside its target, then renamed into place.

Why: a cluster writes a folder of part files task by task; a reader that opens the target while it is being
written, or after a failed run, must see the old folder or the whole new one, never a mixture.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def hidden_beside(out: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name in the target's folder (the same file system, so the rename is atomic)."""
    out = Path(out)
    return out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.{kind}"


def swap_in(tmp: Path, out: Path) -> None:
    """`tmp` renamed to `out`; an old `out` moved aside first, then removed."""
    old = None
    if out.exists():
        old = hidden_beside(out, "old")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
