"""Exit codes: one table for the ``deepiqa`` command and every ``spark-submit`` job.

Schedulers act on these numbers, so they mean the same thing everywhere; ``EXIT_CODE_MEANINGS``
is the table (README and ``--help`` show it, a test keeps them equal). ``run_entry`` is the one
wrapper every entry point's ``main`` goes through: it maps exceptions to these codes and prints
one line instead of a traceback for anything a user can cause.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from enum import IntEnum

from .errors import ROW_ERROR_CODES, DeepIQAError, UsageError


class ExitCode(IntEnum):
    OK = 0
    THRESHOLD = 1
    USAGE = 2
    FAILED = 3


EXIT_CODE_MEANINGS: dict[int, str] = {
    ExitCode.OK: "the run was done; images that could not be scored carry error_code and "
    "error_message in their rows",
    ExitCode.THRESHOLD: "the run was done and its output published, but a threshold you set "
    "was breached: more failed images than --max-error-rate (default 0: any), a held-out "
    "SROCC under --min-srocc, an audit --alert rule that fired",
    ExitCode.USAGE: "usage error, nothing was done: a bad option, an input path that does not "
    "exist, no references, an NR model given --ref, an output that exists (without "
    "--overwrite), is not a deepiqa output, or overlaps an input",
    ExitCode.FAILED: "the run could not be done, nothing was published: unusable weights, an "
    "unreadable listing or manifest, missing credentials, nothing to score, another run holding "
    "the output or audit state (a live lease), an internal error (an audit's previous state is "
    "left as it was)",
}


def _help_table(title: str, rows: dict, width: int = 94) -> str:
    import textwrap

    lines = [f"{title}:"]
    for key, text in rows.items():
        lines += textwrap.wrap(
            text, width, initial_indent=f"  {key!s:<17} ", subsequent_indent=" " * 20
        )
    return "\n".join(lines)


EXIT_CODES_HELP = _help_table("exit codes", {int(k): v for k, v in EXIT_CODE_MEANINGS.items()})
ERROR_CODES_HELP = _help_table("error codes (a row's error_code)", ROW_ERROR_CODES)


def exit_code_for(exc: BaseException) -> ExitCode:
    """The one rule from an exception to an exit code (see the module docstring)."""
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    return ExitCode.FAILED


def threshold_code(failed: int, total: int, max_error_rate: float | None) -> ExitCode:
    """THRESHOLD when the share of failed rows exceeds ``max_error_rate`` (None: no limit)."""
    if max_error_rate is None or total == 0:
        return ExitCode.OK
    return ExitCode.THRESHOLD if failed / total > max_error_rate else ExitCode.OK


def run_entry(prog: str, body: Callable[[], int]) -> int:
    """Run an entry point's body; exceptions become a one-line message and an exit code.

    Errors a user can cause (``UsageError``, ``DeepIQAError``, ``OSError``) print only their
    message; anything else is a bug and also prints its traceback. Never exits 1 for an error:
    1 is reserved for a breached threshold.
    """
    try:
        return int(body())
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return ExitCode.FAILED
    except (UsageError, DeepIQAError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except Exception as exc:  # a bug: keep the traceback, still a documented code
        traceback.print_exc()
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ExitCode.FAILED
