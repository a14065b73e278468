"""Content hashes of input files: what exactly a run read, the same figure wherever the files were hashed."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def sha256(path: Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_of(digests: Iterable[tuple[str, str]]) -> str:
    """One SHA-256 from (relative name, SHA-256 of the file) pairs, in any order: the files may be hashed
    apart (by a cluster's executors) and combined here."""
    h = hashlib.sha256()
    for name, digest in sorted(digests):
        h.update(name.encode())
        h.update(digest.encode())
    return h.hexdigest()
