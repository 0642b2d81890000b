"""What an evaluation run is asked to do (Spark-free): ``EvaluateSpec``, its flags and the rule
from arguments to the spec (``jobs/evaluate.py``; the job is ``spark.evaluate_job``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..options import ScoringOptions, add_scoring_arguments, scoring_options
from ..training.options import DataSource, add_data_arguments, data_source


@dataclass(frozen=True)
class EvaluateSpec:
    """A manifest's images scored, then compared with its subjective scores."""

    data: DataSource
    weights: Path
    output: Path
    overwrite: bool = False
    logistic_params: int = 5
    scoring: ScoringOptions = field(default_factory=ScoringOptions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvaluateSpec:
        return cls(
            data=data_source(args),
            weights=args.weights,
            output=args.output,
            overwrite=args.overwrite,
            logistic_params=args.logistic_params,
            scoring=scoring_options(args),
        )


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation's flags (``EvaluateSpec.from_args`` reads them)."""
    add_data_arguments(p)
    p.add_argument("--weights", type=Path, required=True, help="a deepiqa .safetensors file")
    p.add_argument("--output", type=Path, required=True, help="folder for scores/ and report")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--logistic-params", type=int, choices=[4, 5], default=EvaluateSpec.logistic_params
    )
    add_scoring_arguments(p)
