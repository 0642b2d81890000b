"""Beam's ``RunInference`` over deepiqa's ``BatchScorer``: the worker side of the Beam job.

``ScoreModelHandler`` is a Beam ``ModelHandler`` whose examples are ``ImageRow``s and whose
predictions are the row results (``RESULT_FIELDS`` as a dict). Wrapped in a
``KeyedModelHandler``, each row travels with its key (id, uri, ref_uri and the manifest's own
columns), so nothing but the image goes through the model and the key is joined back as is.

* **Model loading**: ``load_model`` reads the weights from the run's staged copy (any URI Beam's
  ``FileSystems`` reads, so Dataflow workers read it from the output bucket), checks their
  SHA-256 against what the launcher checked, and builds one ``BatchScorer``. RunInference keeps
  it in Beam's per-process ``shared.Shared`` handle (tagged per transform), so every DoFn
  instance and thread of a worker process uses the same model: one load per process. The
  model is not shared *across* processes (``share_model_across_processes`` stays False): that
  would ship every batch's image bytes through a proxy to the process holding the model.
* **Batching**: ``BatchElements`` with ``batch_elements_kwargs`` (``--min-batch-rows``,
  ``--max-batch-rows``); ``BatchScorer.score_rows`` then puts the patches of all a batch's
  images through the network together, and keeps reference features in its LRU cache between
  batches (the pipeline sorts FR rows by reference first).
* **Never failing a bundle**: ``score_rows`` returns one result per row, a score or an error
  code; anything unexpected around it becomes every row's ``internal`` error, not a retry loop.
* **Schemes beyond ``sources``**: a uri with a scheme ``deepiqa_core.sources`` does not read
  (``gs://``, ``hdfs://`` …) but Beam's ``FileSystems`` does (with ``apache-beam[gcp]`` …) is
  read here and handed to ``score_rows`` as bytes, with the same limits and error codes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import torch
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from ..batch import RESULT_FIELDS, BatchScorer, ImageRow, RowResult
from ..errors import (
    AccessDeniedError,
    DeepIQAError,
    ImageTooLargeError,
    MissingInputError,
    ReadError,
    ReadTimeoutError,
    reference_error,
)
from ..local_scorer import scorer_from_bytes
from ..options import ScoringOptions
from ..runs.summary import LOADS_COUNTER_PREFIX
from ..sources import S3_SCHEMES
from ..weights import weights_sha256

NAMESPACE = "deepiqa"
RESULT_NAMES = [name for name, _ in RESULT_FIELDS]
_BATCHES = Metrics.counter(NAMESPACE, "batches")


class LoadedModel:
    """A worker process's scorer; one batch at a time (its reference cache is not thread-safe,
    and torch already spreads one forward pass over the cores)."""

    def __init__(self, scorer: BatchScorer):
        self.scorer = scorer
        self.lock = threading.Lock()
        self.counted = False  # Beam drops metrics reported from setup: counted at first use


def read_uri(uri: str, max_bytes: int | None = None) -> bytes:
    """The bytes at ``uri`` through Beam's FileSystems (local paths too), never decompressed;
    typed errors like ``deepiqa_core.sources``'s."""
    try:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except Exception as exc:  # each file system raises its own kinds
        text = f"{type(exc).__name__} {exc}"
        if isinstance(exc, FileNotFoundError) or any(
            s in text for s in ("NotFound", "No such", "not found", "404")
        ):
            raise MissingInputError(f"no such file or object: {uri}") from exc
        if isinstance(exc, PermissionError) or any(
            s in text for s in ("Forbidden", "AccessDenied", "403", "ermission")
        ):
            raise AccessDeniedError(f"access denied: {uri}") from exc
        raise ReadError(f"cannot read {uri}: {text[:300]}") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(f"more than {max_bytes} bytes: {uri}")
    return data


def beam_reads(uri: Any) -> bool:
    """A uri that ``deepiqa_core.sources`` does not read but Beam's FileSystems can."""
    if not isinstance(uri, str):
        return False
    scheme = urlparse(uri).scheme
    if len(scheme) <= 1 or scheme in S3_SCHEMES or scheme == "file":
        return False
    try:
        FileSystems.get_filesystem(uri)
    except Exception:  # not registered, or its extra is not installed: unsupported_uri
        return False
    return True


def _fetch_all(
    uris: Iterable[str], max_bytes: int, timeout: float, workers: int
) -> dict[str, bytes | BaseException]:
    """Bytes (or the error) for each distinct uri, read in parallel, each within ``timeout``."""
    wanted = sorted(set(uris))
    if not wanted:
        return {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(wanted))))
    futures = {u: pool.submit(read_uri, u, max_bytes) for u in wanted}
    out: dict[str, bytes | BaseException] = {}
    for uri, future in futures.items():
        try:
            out[uri] = future.result(timeout=timeout)
        except TimeoutError:
            out[uri] = ReadTimeoutError(f"no bytes after {timeout:g} s: {uri}")
        except Exception as exc:
            out[uri] = exc
    pool.shutdown(wait=False, cancel_futures=True)  # a stuck read must not hold the batch
    return out


def score_batch(scorer: BatchScorer, rows: Sequence[ImageRow]) -> list[RowResult]:
    """One result per row, in order; never raises (see the module docstring)."""
    config = scorer.config
    full_reference = scorer.scorer.full_reference
    wanted = [r.uri for r in rows if r.image is None and r.uri and beam_reads(r.uri)]
    if full_reference:
        wanted += [
            r.ref_uri for r in rows if r.ref_image is None and r.ref_uri and beam_reads(r.ref_uri)
        ]
    fetched = _fetch_all(wanted, config.max_bytes, config.read_timeout, config.decode_workers or 8)
    results = [RowResult() for _ in rows]
    todo: list[tuple[int, ImageRow]] = []
    for i, row in enumerate(rows):
        image = row.image if row.image is not None else fetched.get(row.uri or "")
        ref_image: bytes | BaseException | None = row.ref_image
        if full_reference and ref_image is None:
            ref_image = fetched.get(row.ref_uri or "")
        if isinstance(image, BaseException):
            results[i].fail(image)
        elif isinstance(ref_image, BaseException):
            results[i].fail(reference_error(ref_image, row.ref_uri))
        else:
            todo.append((i, replace(row, image=image, ref_image=ref_image)))
    try:
        scored = scorer.score_rows([row for _, row in todo])
    except Exception as exc:  # a bug: every row still gets its own error, the bundle goes on
        scored = [RowResult() for _ in todo]
        for result in scored:
            result.fail(exc)
    for (i, _), result in zip(todo, scored, strict=True):
        results[i] = result
    return results


class ScoreModelHandler(ModelHandler[ImageRow, dict, LoadedModel]):
    """ImageRows in, ``RESULT_FIELDS`` dicts out (see the module docstring)."""

    def __init__(
        self,
        weights_uri: str,
        weights_sha: str,
        options: ScoringOptions,
        *,
        min_batch_rows: int = 8,
        max_batch_rows: int = 64,
        torch_threads: int | None = None,
    ):
        super().__init__()
        self.weights_uri = weights_uri
        self.weights_sha = weights_sha
        self.options = options
        self.min_batch_rows = min_batch_rows
        self.max_batch_rows = max_batch_rows
        self.torch_threads = torch_threads

    def load_model(self) -> LoadedModel:
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        data = read_uri(self.weights_uri)
        if weights_sha256(data) != self.weights_sha:  # before loading: a swapped file says so
            raise DeepIQAError(f"{self.weights_uri} changed after the run started")
        scorer, meta, _ = scorer_from_bytes(data, self.options)
        batch = BatchScorer(
            scorer, meta.variant, self.weights_sha, self.options.batch, meta.score_range
        )
        return LoadedModel(batch)

    def run_inference(
        self,
        batch: Sequence[ImageRow],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> list[dict]:
        with model.lock:
            if not model.counted:
                model.counted = True
                Metrics.counter(NAMESPACE, LOADS_COUNTER_PREFIX + model.scorer.scorer.compute).inc()
            _BATCHES.inc()
            results = score_batch(model.scorer, batch)
        return [{name: getattr(r, name) for name in RESULT_NAMES} for r in results]

    def get_num_bytes(self, batch: Sequence[ImageRow]) -> int:
        """Bytes the batch carries, without pickling images just to measure them."""
        return sum(len(r.image or b"") + len(r.ref_image or b"") for r in batch)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": self.min_batch_rows, "max_batch_size": self.max_batch_rows}
