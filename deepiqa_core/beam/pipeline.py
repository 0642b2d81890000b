"""The Beam scoring job (``python jobs/score_beam.py``): the Spark job's inputs, rules and outputs
on any Beam runner (DirectRunner and Prism locally, Dataflow, Flink).

One run:

1. On the launcher, before any work: Beam's options are checked (an unknown flag is a usage
   error), the output may be used (``outputs.check_separate``; ``publish.publish`` checks
   ``--overwrite`` and that only a deepiqa output is replaced, then opens the run's work folder:
   the run protocol of ``runs.publish``, the Spark job's), the weights are read and checked in
   full (``load_weights``), and the rows to score come from the library's one rule
   (``inputs.image_rows``: listing, manifest columns, FR pairing), with the Spark job's id rule
   (a repeated uri gets ``#2``, ``#3`` …) and its manifest pass-through columns (all, or
   ``--pass-columns``; a name like an output column gets ``manifest_``).
2. The weights and the rows are staged in the run's work folder
   (``_weights.safetensors``, ``_items/``), so the pipeline graph stays small whatever the input
   and remote workers read both from the output's file system.
3. The pipeline: ``ReadFromParquet(_items)`` → FR rows grouped by reference and sorted (a batch
   shares references, each worker featurises a reference once) or NR rows reshuffled →
   ``RunInference(KeyedModelHandler(ScoreModelHandler))`` (``handler``: the model loaded once
   per worker process, ``BatchElements`` batches, ``BatchScorer.score_rows``) → one output row
   per input row → ``WriteToParquet`` with an explicit Arrow schema (``OUTPUT_COLUMNS``, then
   the manifest's columns).
4. The launcher reads the written scores back (the columns it needs), checks there is exactly
   one row per input, writes ``summary.json`` and publishes (rename, or ``_LATEST``).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from dataclasses import asdict, replace
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from ..batch import OUTPUT_COLUMNS, ImageRow
from ..errors import DeepIQAError, UsageError
from ..inputs import ROLE_COLUMNS, image_rows, manifest_columns, passed_columns, read_table
from ..listing import absolute
from ..local_scorer import read_weights
from ..options import InputSpec, is_manifest
from ..outputs import check_separate
from ..runs.beam_spec import ScoreBeamSpec
from ..runs.publish import Run
from ..runs.storage import join
from ..runs.summary import RunSummary, ScoreStats, loads_by_compute, versions
from ..sources import local_path
from ..weights import load_weights, weights_sha256
from .handler import NAMESPACE, ScoreModelHandler
from .publish import is_local, publish
from .summary import SCORES, format_beam_summary, read_scores, score_stats

SCORE_NAMES = [name for name, _ in OUTPUT_COLUMNS]
ARROW_TYPES = {
    "string": pa.string(),
    "double": pa.float64(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "bigint": pa.int64(),
}
WEIGHTS_FILE = "_weights.safetensors"
ITEMS = "_items"
REMOTE_ONLY_RUNNERS = ("dataflow",)  # workers that cannot see the launcher's disk
SECRET_WORDS = ("secret", "token", "password", "credential", "access_key")


# --- 1. checks and rows (launcher) ---------------------------------------------------------


def pipeline_options(args: tuple[str, ...]) -> PipelineOptions:
    """Beam's options from the arguments this job does not take; an unknown one (a typo of
    ours or of Beam's) is a usage error rather than a warning Beam would log and drop."""
    options = PipelineOptions(list(args))
    known = set(options.get_all_options())
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - known)
    if unknown:
        flags = ", ".join(f"--{name}" for name in unknown)
        raise UsageError(f"unknown option(s) {flags}: neither this job's nor Beam's")
    return options


def _absolute(source: str) -> str:
    """A folder or glob as ``listing.absolute`` makes it (as in the Spark job); a manifest's
    path as given."""
    return source if is_manifest(source) else absolute(source)


def _check_schemes(spec: InputSpec) -> None:
    for name, source in (("INPUT", spec.source), ("--ref", spec.ref)):
        if source is None:
            continue
        scheme = source.split("://", 1)[0] if "://" in source else ""
        if scheme not in ("", "file", "s3", "s3a", "s3n"):
            raise UsageError(
                f"{name} {source}: only local paths and s3:// are listed or read as manifests "
                f"here; put {scheme}:// uris in a local or s3:// manifest instead"
            )


def unique_ids(ids: list[str | None]) -> list[str | None]:
    """The Spark job's id rule without an id column: a repeat of a uri gets ``#2``, ``#3`` …
    in manifest order."""
    seen: dict[str, int] = {}
    out: list[str | None] = []
    for value in ids:
        if value is None:
            out.append(None)
            continue
        seen[value] = seen.get(value, 0) + 1
        out.append(value if seen[value] == 1 else f"{value}#{seen[value]}")
    return out


def passed_table(
    manifest: Any, spec: InputSpec, pass_columns: tuple[str, ...] | None
) -> pa.Table | None:
    """A manifest's own columns to copy to the scores (renamed where they clash), in order."""
    if manifest is None:
        if pass_columns:
            raise UsageError("--pass-columns needs a manifest INPUT")
        return None
    cols = manifest_columns(list(manifest.columns), spec)
    kept = passed_columns(list(manifest.columns), cols, pass_columns, SCORE_NAMES)
    extras = pa.Table.from_pandas(manifest[[c for c, _ in kept]], preserve_index=False)
    return extras.rename_columns([name for _, name in kept])


def items_table(
    spec: InputSpec, full_reference: bool, variant: str, pass_columns: tuple[str, ...] | None
) -> pa.Table:
    """``id, uri[, image][, ref_uri][, ref_image]`` and the passed columns, one row per input."""
    _check_schemes(spec)
    ref = None if spec.ref is None else _absolute(spec.ref)
    listed = replace(spec, source=_absolute(spec.source), ref=ref)
    rows = image_rows(listed, full_reference, variant)
    manifest = read_table(spec.source) if spec.is_manifest else None
    extras = passed_table(manifest, spec, pass_columns)
    ids: list[str | None] = [r.id for r in rows]
    if manifest is not None and spec.id_column not in manifest.columns:
        ids = unique_ids(ids)
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.string()),
        "uri": pa.array([r.uri for r in rows], pa.string()),
        "ref_uri": pa.array([r.ref_uri if full_reference else None for r in rows], pa.string()),
    }
    if any(r.image is not None for r in rows):
        columns["image"] = pa.array([r.image for r in rows], pa.binary())
    if full_reference and any(r.ref_image is not None for r in rows):
        columns["ref_image"] = pa.array([r.ref_image for r in rows], pa.binary())
    table = pa.table(columns)
    if extras is not None:
        for name, column in zip(extras.column_names, extras.columns, strict=True):
            table = table.append_column(name, column)
    return table


def output_schema(items: pa.Schema) -> pa.Schema:
    """``OUTPUT_COLUMNS`` with their Arrow types, then the manifest's passed columns."""
    fields = [pa.field(name, ARROW_TYPES[kind]) for name, kind in OUTPUT_COLUMNS]
    fields += [f for f in items if f.name not in ROLE_COLUMNS]
    return pa.schema(fields)


# --- 3. the pipeline -----------------------------------------------------------------------


def keyed_row(item: dict[str, Any], extras: tuple[str, ...]) -> tuple[dict, ImageRow]:
    """(what the output row keeps, what the model needs) for one staged item."""
    key = {"id": item["id"], "uri": item["uri"], "ref_uri": item.get("ref_uri")}
    key.update((name, item[name]) for name in extras)
    row = ImageRow(
        id=item["id"],
        uri=item["uri"],
        image=item.get("image"),
        ref_uri=item.get("ref_uri"),
        ref_image=item.get("ref_image"),
    )
    return key, row


def reference_key(element: tuple[dict, ImageRow]) -> str:
    """The reference a row is scored against ("" when unpaired)."""
    row = element[1]
    if row.ref_image is not None:
        return "bytes:" + hashlib.sha1(row.ref_image).hexdigest()
    return row.ref_uri or ""


def sorted_group(group: tuple[str, Any]) -> list[tuple[dict, ImageRow]]:
    return sorted(group[1], key=lambda element: str(element[0]["id"]))


def output_row(element: tuple[dict, dict], model: str, sha: str) -> dict[str, Any]:
    key, result = element
    return {**key, **result, "model": model, "model_sha256": sha}


def build_pipeline(
    p: beam.Pipeline,
    run: Run,
    handler: ScoreModelHandler,
    schema: pa.Schema,
    *,
    full_reference: bool,
    has_bytes: bool,
    model: str,
    shards: int,
) -> None:
    """The graph of step 3 in the module docstring."""
    extras = tuple(f.name for f in schema if f.name not in SCORE_NAMES)
    rows = (
        p
        | "ReadItems" >> beam.io.ReadFromParquet(join(run.path(ITEMS), "*.parquet"))
        | "Key" >> beam.Map(keyed_row, extras)
    )
    if full_reference:
        rows = (
            rows
            | "ByReference" >> beam.GroupBy(reference_key)
            | "SortedById" >> beam.FlatMap(sorted_group)
        )
    elif not has_bytes:  # a table of image bytes is scored where it is read, never shuffled
        rows = rows | "Spread" >> beam.Reshuffle()
    (
        rows
        | "Score" >> RunInference(KeyedModelHandler(handler))
        | "OutputRow" >> beam.Map(output_row, model, handler.weights_sha)
        | "Write"
        >> beam.io.WriteToParquet(
            join(run.path(SCORES), "part"),
            schema,
            codec="snappy",
            file_name_suffix=".parquet",
            num_shards=shards,
        )
    )


def redacted(args: tuple[str, ...]) -> list[str]:
    """Beam's arguments for summary.json, without the values of secrets (--s3_secret_access_key
    and the like): ``--name=value`` and ``--name value`` forms."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("--"):
            out.append("***")
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        secret = arg.startswith("--") and any(w in name.lower() for w in SECRET_WORDS)
        out.append(f"{name}=***" if secret and eq else arg)
        hide_next = secret and not eq
    return out


def counters(result: Any) -> dict[str, int]:
    """This job's counters (committed where the runner has them, else attempted)."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    out: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + int(value or 0)
    return out


# --- 4. summary and publishing ---------------------------------------------------------------


def _stage(run: Run, weights: bytes, items: pa.Table) -> None:
    """The weights and the rows to score, where the workers read them (the run's folder)."""
    row_group = 64 if "image" in items.column_names else 1000
    run.storage.mkdirs(run.path(ITEMS))
    run.storage.write_bytes(run.path(WEIGHTS_FILE), weights)
    buffer = io.BytesIO()
    pq.write_table(items, buffer, row_group_size=row_group)
    run.storage.write_bytes(run.path(ITEMS, "items.parquet"), buffer.getvalue())


def _drop_scratch(run: Run) -> None:
    run.storage.delete(run.path(ITEMS))
    run.storage.delete(run.path(WEIGHTS_FILE))


def run_score_beam(spec: ScoreBeamSpec) -> RunSummary:
    """Check, stage, run the pipeline, summarise and publish; returns the summary."""
    started_at, started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    options = pipeline_options(spec.pipeline_args)
    FileSystems.set_options(options)
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    if is_local(spec.output):
        if runner.lower().removesuffix("runner") in REMOTE_ONLY_RUNNERS:
            raise UsageError(f"--runner {runner} writes from remote workers: give a gs:// --output")
        check_separate(local_path(spec.output), [spec.inputs.source, spec.inputs.ref, spec.weights])
    run_name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    with publish(spec.output, spec.overwrite, run_name) as run:
        try:
            pipeline = beam.Pipeline(options=options)
        except (ValueError, ImportError) as exc:  # an unknown --runner, or one not installed
            raise UsageError(str(exc)) from exc
        weights = read_weights(spec.weights)
        _, meta = load_weights(weights)  # a file that cannot be used fails here (exit 3)
        sha = weights_sha256(weights)
        items = items_table(
            spec.inputs, meta.variant.endswith("-fr"), meta.variant, spec.pass_columns
        )
        if items.num_rows == 0:
            raise DeepIQAError(f"no images found in {spec.inputs.source}")
        _stage(run, weights, items)
        stats, metrics, shards = _run_pipeline(spec, pipeline, run, sha, meta, items)
        _drop_scratch(run)
        arguments = asdict(replace(spec, pipeline_args=tuple(redacted(spec.pipeline_args))))
        summary = RunSummary(
            engine="beam",
            model=meta.variant,
            model_sha256=sha,
            run_id=run_name,
            started_at=started_at,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            stats=stats,
            seconds=round(time.perf_counter() - started, 2),
            model_loads_by_compute=loads_by_compute(metrics),
            output=run.published,
            publish=run.mode,
            input={"source": spec.inputs.source, "ref": spec.inputs.ref},
            arguments=json.loads(json.dumps(arguments, default=str)),
            versions=versions(apache_beam=beam.__version__),
            engine_facts={
                "runner": runner,
                "batches": metrics.get("batches", 0),
                "output_files": shards,
            },
        )
        run.storage.write_text(
            run.path("summary.json"), json.dumps(summary.to_json(), indent=2) + "\n"
        )
    return summary


def _run_pipeline(
    spec: ScoreBeamSpec, pipeline: Any, run: Run, sha: str, meta: Any, items: pa.Table
) -> tuple[ScoreStats, dict[str, int], int]:
    """Build and run the pipeline over the staged rows; its stats, counters and shard count."""
    ex = spec.execution
    handler = ScoreModelHandler(
        run.path(WEIGHTS_FILE),
        sha,
        spec.scoring,
        min_batch_rows=ex.min_batch_rows,
        max_batch_rows=ex.max_batch_rows,
        torch_threads=ex.torch_threads,
    )
    shards = max(1, -(-items.num_rows // ex.rows_per_file))
    build_pipeline(
        pipeline,
        run,
        handler,
        output_schema(items.schema),
        full_reference=meta.variant.endswith("-fr"),
        has_bytes="image" in items.column_names,
        model=meta.variant,
        shards=shards,
    )
    result = pipeline.run()
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise DeepIQAError(f"the pipeline ended {state}")
    stats = score_stats(read_scores(run, ["score", "in_range", "error_code"]), items.num_rows)
    if stats.rows_out != stats.rows_in:
        raise DeepIQAError(f"{stats.rows_out} output rows for {stats.rows_in} inputs")
    return stats, counters(result), shards


def run_score_beam_job(spec: ScoreBeamSpec) -> int:
    """Run, print the summary; exit code 1 when --max-error-rate is exceeded."""
    summary = run_score_beam(spec)
    print(format_beam_summary(summary))
    code, breach = summary.error_rate_verdict(spec.scoring.max_error_rate)
    if breach:
        print(breach)
    return code
