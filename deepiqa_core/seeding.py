"""The one rule for deriving random seeds: every stream is keyed by what it is for.

``derive_seed(*parts)`` hashes its parts (numbers and names, e.g. ``("crops", seed, epoch,
row_id)``) with SHA-256, so streams for different purposes or different rows never share a seed
and any process can recompute a stream from its key alone; that is what lets a resumed or
re-sharded training run draw exactly the crops, shuffles and dropout masks of an uninterrupted
one, and the Spark synthesis job write the same pixels as the local one.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object, bits: int = 64) -> int:
    """A ``bits``-bit seed from ``parts``: joined by "/", SHA-256, first 8 bytes little-endian."""
    if not 1 <= bits <= 64:
        raise ValueError("bits must be in 1..64")
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << bits) - 1)


def rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded by ``derive_seed(*parts)``."""
    return np.random.default_rng(derive_seed(*parts))
