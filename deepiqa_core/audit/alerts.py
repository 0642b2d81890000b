"""Alert rules of the nightly audit: ``--alert "p10<40"``, parsed once, judged on a run's numbers.

A rule is ``METRIC OP NUMBER`` with OP one of ``< <= > >=``; METRIC is one of ``METRICS``.
Score metrics are read in the model's own units (``p10<40`` compares the score itself), so they
only mean something when it is known which way is better: a model whose weights say
``score_direction: unknown`` needs ``--score-direction`` before such a rule is accepted.
``*_drop`` metrics are how much worse the library got since the previous run, in that direction
(positive = worse): ``median_drop>5`` fires when the median quality fell by more than 5.
``worse(D)`` counts images whose content changed and whose score got worse by more than D
(``worse(10)>0``: any image degraded in place); ``new_below(T)`` counts new images under T.
A fired alert is ``new`` or ``firing`` since the first of the unbroken run of earlier runs in
which the same rule fired (``mark_streaks``), so the on-call can tell news from a known issue.
A metric without a value (``median_drop`` on a first run, ``p10`` with nothing scored) does not
fire; the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError

# name -> (needs a score direction, takes an argument, what it is)
METRICS: dict[str, tuple[bool, bool, str]] = {
    "p10": (True, False, "10th percentile of the library's scores"),
    "p50": (True, False, "median of the library's scores"),
    "median": (True, False, "median of the library's scores"),
    "p90": (True, False, "90th percentile of the library's scores"),
    "mean": (True, False, "mean of the library's scores"),
    "share_below": (True, True, "share_below(T): share of the library's scored images < T"),
    "share_above": (True, True, "share_above(T): share of the library's scored images > T"),
    "worse": (True, True, "worse(D): changed images whose score got worse by more than D"),
    "new_below": (True, True, "new_below(T): new images (first seen this run) scoring < T"),
    "median_drop": (True, False, "median quality drop since the previous run (+ = worse)"),
    "p10_drop": (True, False, "p10 quality drop since the previous run (+ = worse)"),
    "mean_drop": (True, False, "mean quality drop since the previous run (+ = worse)"),
    "error_rate": (False, False, "share of the library's images that failed"),
    "run_error_rate": (False, False, "share of this run's scored rows that failed"),
    "failed": (False, False, "images that failed in this run"),
    "new": (False, False, "new images in this run"),
    "changed": (False, False, "changed images in this run"),
    "removed": (False, False, "images removed since the previous run"),
    "library": (False, False, "images in the library"),
}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_RULE = re.compile(
    r"^\s*(?P<metric>[a-z_0-9]+)\s*(?:\(\s*(?P<arg>[-+0-9.eE]+)\s*\))?\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[-+0-9.eE]+)\s*$"
)
ALERTS_HELP = "alert rules (--alert, repeatable; exit code 1 when one fires):\n" + "\n".join(
    f"  {name:<15} {text}" for name, (_, _, text) in METRICS.items()
)


@dataclass(frozen=True)
class AlertRule:
    text: str
    metric: str
    op: str
    value: float
    arg: float | None = None

    @property
    def needs_direction(self) -> bool:
        return METRICS[self.metric][0]


def parse_rule(text: str) -> AlertRule:
    """``"share_below(35)>0.05"`` -> AlertRule; a malformed rule is a usage error."""
    match = _RULE.match(text)
    if not match:
        raise UsageError(f"--alert {text!r}: expected METRIC OP NUMBER, e.g. 'p10<40'")
    metric = match["metric"]
    if metric not in METRICS:
        raise UsageError(f"--alert {text!r}: unknown metric {metric!r} (one of {sorted(METRICS)})")
    takes_arg = METRICS[metric][1]
    if takes_arg != (match["arg"] is not None):
        form = f"{metric}(T)" if takes_arg else metric
        raise UsageError(f"--alert {text!r}: write {form}")
    try:
        value = float(match["value"])
        arg = float(match["arg"]) if match["arg"] is not None else None
    except ValueError:
        raise UsageError(f"--alert {text!r}: not a number") from None
    return AlertRule(text.strip(), metric, match["op"], value, arg)


def check_direction(rules: tuple[AlertRule, ...], direction: str) -> None:
    """Refuse score rules when nobody knows which way is better (see the module docstring)."""
    blind = [r.text for r in rules if r.needs_direction]
    if blind and direction not in ("higher_better", "lower_better"):
        raise UsageError(
            f"--alert {blind[0]!r} compares scores, but the model's score direction is "
            f"{direction!r}: state it with --score-direction higher_better|lower_better"
        )


def evaluate(
    rules: tuple[AlertRule, ...], value_of: Callable[[AlertRule], float | None]
) -> list[dict]:
    """Each rule with its metric's value and whether it fired (a missing value never fires)."""
    results = []
    for rule in rules:
        value = value_of(rule)
        fired = value is not None and OPERATORS[rule.op](value, rule.value)
        results.append(
            {"rule": rule.text, "metric": rule.metric, "value": value, "fired": bool(fired)}
        )
    return results


def mark_streaks(alerts: list[dict], earlier: list[dict], run_id: str, started_at: str) -> None:
    """Give each alert its ``status``: ``ok``, ``new`` (fired now, not in the previous run) or
    ``firing`` since ``since_run`` (the first run of the unbroken streak in ``earlier``, the
    previous runs' summaries, oldest first)."""
    for alert in alerts:
        if not alert["fired"]:
            alert.update(status="ok", since_run=None, since=None)
            continue
        since = {"run_id": run_id, "started_at": started_at}
        for summary in reversed(earlier):
            rules = {a.get("rule"): a for a in summary.get("alerts", []) if isinstance(a, dict)}
            if not rules.get(alert["rule"], {}).get("fired"):
                break
            since = summary
        status = "new" if since["run_id"] == run_id else "firing"
        alert.update(status=status, since_run=since["run_id"], since=since.get("started_at"))
