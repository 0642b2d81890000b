"""Training batches from a Parquet examples table, read through Petastorm.

Each rank reads its shard (Petastorm shards by row group) once per epoch; a ``TransformSpec``
decodes each row and cuts its random crops (``patch_sampling``: positions fixed by seed, epoch
and row id), and a seeded shuffle buffer mixes rows across row groups. With the default
single-threaded reader pool the whole stream is reproducible, which exact resume relies on;
``reader_workers > 0`` reads faster but in an order that varies from run to run.

Petastorm is imported here only: scoring never needs it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from ..models import PATCH_SIZE
from ..seeding import derive_seed, rng
from .loop import Batch
from .patch_sampling import example_crops


def _crop_rows(frame, *, seed: int, epoch: int, count: int, full_reference: bool):
    """Petastorm transform: image bytes -> crops (runs inside the reader)."""
    patches, refs = [], []
    ref_column = frame["ref_image"] if full_reference else [None] * len(frame)
    for row_id, image, ref in zip(frame["row_id"], frame["image"], ref_column, strict=True):
        p, r = example_crops(image, ref, count, seed, epoch, int(row_id))
        patches.append(p)
        refs.append(r)
    out = frame[["row_id", "score"]].copy()
    out["patches"] = patches
    if full_reference:
        out["ref_patches"] = refs
    return out


class PetastormSource:
    def __init__(
        self,
        folder: Path,
        *,
        full_reference: bool,
        patches_per_image: int,
        batch_images: int,
        seed: int,
        rank: int,
        world: int,
        shuffle_buffer: int,
        reader_workers: int,
    ) -> None:
        self.url = Path(folder).absolute().as_uri()
        self.full_reference = full_reference
        self.count, self.batch_images, self.seed = patches_per_image, batch_images, seed
        self.rank, self.world = rank, world
        self.shuffle_buffer, self.reader_workers = max(1, shuffle_buffer), reader_workers

    def _reader(self, epoch: int):
        from petastorm import make_batch_reader
        from petastorm.transform import TransformSpec

        shape = (self.count, 3, PATCH_SIZE, PATCH_SIZE)
        edits = [("patches", np.uint8, shape, False)]
        fields = ["row_id", "score", "image"]
        if self.full_reference:
            edits.append(("ref_patches", np.uint8, shape, False))
            fields.append("ref_image")
        spec = TransformSpec(
            partial(
                _crop_rows,
                seed=self.seed,
                epoch=epoch,
                count=self.count,
                full_reference=self.full_reference,
            ),
            edit_fields=edits,
            removed_fields=[f for f in fields if f.endswith("image")],
        )
        return make_batch_reader(
            self.url,
            schema_fields=fields,
            num_epochs=1,
            cur_shard=self.rank,
            shard_count=self.world,
            shuffle_row_groups=True,
            seed=derive_seed("row-groups", self.seed, epoch, bits=32),
            reader_pool_type="thread" if self.reader_workers else "dummy",
            workers_count=max(1, self.reader_workers),
            transform_spec=spec,
        )

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Full batches only: the last few rows of a shard that do not fill one are dropped."""
        shuffle = rng("shuffle", self.seed, epoch, self.rank)
        buffer: list[tuple] = []
        ready: list[tuple] = []

        def take() -> Iterator[Batch]:
            ready.append(buffer.pop(int(shuffle.integers(len(buffer)))))
            if len(ready) == self.batch_images:
                yield Batch(
                    np.stack([r[0] for r in ready]),
                    np.stack([r[1] for r in ready]) if self.full_reference else None,
                    np.array([r[2] for r in ready], np.float32),
                )
                ready.clear()

        with warnings.catch_warnings():  # petastorm 0.12 on pyarrow 14: legacy-API warnings
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="schema_fields behavior has changed")
            with self._reader(epoch) as reader:
                for cols in reader:
                    refs = cols.ref_patches if self.full_reference else [None] * len(cols.row_id)
                    for i in range(len(cols.row_id)):
                        buffer.append((cols.patches[i], refs[i], cols.score[i]))
                        if len(buffer) > self.shuffle_buffer:
                            yield from take()
        while buffer:
            yield from take()
