"""The nightly audit's schedulers: the Airflow DAG (infra/airflow/), the spark-operator
ScheduledSparkApplication (infra/k8s/scheduledsparkapplication-audit.yaml), and one machine's
systemd units (infra/systemd/) and crontab (infra/cron/).

Each names audit arguments that the audit's own parser accepts, runs nightly without overlapping
runs, and fails or alerts when the audit exits non-zero. The DAG is loaded with Airflow's own
DagBag in the separate Airflow environment (scripts/setup-airflow.sh), its task is executed
against a stand-in spark-submit, and the command it runs is the README's nightly audit command.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import load_job

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
MARKER = "<!-- nightly-audit-command -->"
ALERTS = ["error_rate>0.01", "median_drop>5", "worse(15)>0"]


# --- the audit's own parsers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_parser():
    """``jobs/audit.py``'s ``build_parser()``; a missing job fails (the recipes run it)."""
    if not (ROOT / "jobs" / "audit.py").exists():
        pytest.fail(
            "jobs/audit.py does not exist: the scheduler recipes run it, and their arguments are "
            "checked with its build_parser()"
        )
    job = load_job("audit")
    if not hasattr(job, "build_parser"):
        pytest.fail("jobs/audit.py has no build_parser(): cannot check the recipes' arguments")
    return job.build_parser()


def accepted(parser, args: list[str], what: str):
    try:
        return parser.parse_args(args)
    except SystemExit as exc:  # argparse's usage error; its message is in the captured stderr
        pytest.fail(f"{what}: the audit's parser rejects {args} (exit {exc.code})")


def cli_audit(args: list[str], what: str):
    """``deepiqa audit ARGS`` as the ``deepiqa`` command parses it."""
    from deepiqa_core.cli import build_parser

    return accepted(build_parser(), ["audit", *args], what)


def without_weights(args: list[str]) -> list[str]:
    """The audit arguments but --weights (a file shipped with the job, or on a volume)."""
    at = args.index("--weights")
    return args[:at] + args[at + 2 :]


def alert_rules(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--alert"]


# --- the README's command ---------------------------------------------------------------------


def readme_command(text: str) -> list[str]:
    """The words of the fenced block right after the ``<!-- nightly-audit-command -->`` line:
    one command, its lines joined at trailing backslashes, split as the shell would."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if line.strip() == MARKER]
    if len(starts) != 1:
        raise LookupError(f"{len(starts)} lines are {MARKER!r}; want exactly one")
    rest = lines[starts[0] + 1 :]
    while rest and not rest[0].strip():
        rest.pop(0)
    if not rest or not rest[0].lstrip().startswith("```"):
        raise LookupError(f"no fenced code block right after {MARKER!r}")
    body = []
    for line in rest[1:]:
        if line.lstrip().startswith("```"):
            break
        body.append(line)
    else:
        raise LookupError(f"the code block after {MARKER!r} is not closed")
    body = [line for line in body if line.strip()]
    if not body or any(not line.rstrip().endswith("\\") for line in body[:-1]):
        raise LookupError(f"the block after {MARKER!r} is not one (backslash-continued) command")
    return shlex.split(" ".join(line.rstrip().removesuffix("\\") for line in body))


def test_readme_command_reads_the_block_after_the_marker():
    text = textwrap.dedent(
        """\
        Other text
        ```bash
        not-this --one
        ```
        <!-- nightly-audit-command -->

        ```bash
        spark-submit --name a \\
          jobs/audit.py s3a://x/ --alert "p10<40" \\
          --alert 'share_below(35)>0.05'
        ```
        ```bash
        nor-this
        ```
        """
    )
    assert readme_command(text) == [
        "spark-submit",
        "--name",
        "a",
        "jobs/audit.py",
        "s3a://x/",
        "--alert",
        "p10<40",
        "--alert",
        "share_below(35)>0.05",
    ]
    with pytest.raises(LookupError, match="exactly one"):
        readme_command(text.replace(MARKER, "<!-- other -->"))
    with pytest.raises(LookupError, match="no fenced"):
        readme_command(text.replace(MARKER, MARKER + "\nprose"))
    with pytest.raises(LookupError, match="one .*command"):  # a lost backslash: two commands
        readme_command(text.replace('"p10<40" \\', '"p10<40"'))


# --- Airflow ----------------------------------------------------------------------------------


def test_airflow_environment_is_pinned_apart_from_the_main_one():
    """constraints-airflow.txt is a full freeze (every package pinned, so CI installs what was
    tested) of Airflow 3 with the Spark provider, and names none of the main set's Spark stack."""
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints-airflow.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert all(re.fullmatch(r"[0-9][0-9a-z.+!]*", v) for v in pins.values()), pins
    assert (
        pins["apache-airflow"].startswith("3.") and "apache-airflow-providers-apache-spark" in pins
    )
    assert "pyspark" not in pins and "pyspark-client" in pins  # the clash that keeps it apart
    script = (ROOT / "scripts" / "setup-airflow.sh").read_text()
    assert "constraints-airflow.txt | sha256sum" in script and "/venv-airflow-" in script
    assert (
        subprocess.run(["bash", "-n", str(ROOT / "scripts" / "setup-airflow.sh")]).returncode == 0
    )


# A made-up DEEPIQA_HOME, so the test sees the DAG take its paths from the environment; the README
# command runs from that folder (relative paths).
HOME = "/srv/deepiqa-home-under-test"
CONNECTION = {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "cluster"}}

# Runs in the Airflow environment: loads infra/airflow with DagBag, describes the DAG, builds the
# task's command with the provider's SparkSubmitHook, then executes the task against a stand-in
# spark-submit (first on PATH) that records its arguments and exits with $FAKE_SPARK_EXIT.
PROBE = """
import json, os, re, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {str(k): v for k, v in bag.import_errors.items()},
       "dag_ids": sorted(bag.dag_ids)}
dag = bag.dags.get("deepiqa_nightly_audit")
if dag is not None:
    task = dag.get_task("audit")
    out["tasks"] = {
        t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                    "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule)}
        for t in dag.tasks
    }
    out.update(
        schedule=dag.timetable.expression, timezone=str(dag.timetable.timezone),
        catchup=dag.catchup, max_active_runs=dag.max_active_runs, task_id=task.task_id,
        operator=f"{type(task).__module__}.{type(task).__name__}", retries=task.retries,
        command=task._get_hook()._build_spark_submit_command(task.application), runs={},
    )
    for code in ("0", "1", "3"):
        os.environ["FAKE_SPARK_EXIT"] = code
        if os.path.exists(os.environ["FAKE_SPARK_ARGV"]):
            os.remove(os.environ["FAKE_SPARK_ARGV"])
        task._hook = None
        try:
            task.execute({})
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        argv = None  # spark-submit did not run
        if os.path.exists(os.environ["FAKE_SPARK_ARGV"]):
            with open(os.environ["FAKE_SPARK_ARGV"]) as f:
                argv = f.read().split("\\0")[:-1]
        out["runs"][code] = {"error": error, "argv": argv}
    # the checks, on each outcome the audit can leave in STATE (the release's files from the
    # checkout: DEEPIQA_HOME is made up)
    out["checks"] = {}
    state = os.environ["CHECK_STATE"]
    os.makedirs(state, exist_ok=True)
    for name, text in json.loads(os.environ["OUTCOMES"]).items():
        path = os.path.join(state, "_OUTCOME")
        if text is None:
            if os.path.exists(path):
                os.remove(path)
        else:
            with open(path, "w") as f:
                f.write(text)
        result = {}
        for task_id in ("check_run", "check_alerts"):
            check = dag.get_task(task_id)
            home, checkout = os.environ["DEEPIQA_HOME"], os.environ["CHECKOUT"]
            command = check.bash_command.replace(home, checkout).replace(
                "s3a://media/deepiqa/audit", state  # the DAG's default STATE
            )
            # the checkout instead of the release zip; /usr/bin/python3 has no torch
            check.bash_command = re.sub(r"PYTHONPATH=\\S+", f"PYTHONPATH={checkout}", command)
            try:
                check.execute({})
                result[task_id] = None
            except Exception as exc:
                result[task_id] = f"{type(exc).__name__}: {exc}"
        out["checks"][name] = result
print(json.dumps(out))
"""


def _outcomes() -> dict[str, str | None]:
    """What a night can leave in STATE/_OUTCOME: written the way the audit writes them."""
    from deepiqa_core.audit.outcome import failed_outcome, run_outcome
    from deepiqa_core.errors import StateBusyError

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {"rule": "p10<40", "value": 31.5, "fired": True, "status": "new", "since_run": "R2"}
    ok = {"outcome": "ok", "alerts": [], "run_id": "R1", "finished_at": now, "report": "r"}
    stale = run_outcome({**ok, "finished_at": "2026-01-01T02:00:00Z"})
    return {
        "ok": json.dumps(run_outcome(ok)),
        "alert": json.dumps(run_outcome({**ok, "outcome": "alert", "alerts": [alert]})),
        "failed": json.dumps(failed_outcome("R3", StateBusyError("another run holds it"))),
        "stale": json.dumps(stale),  # last night's: tonight's run never finished
        "missing": None,
    }


@pytest.fixture(scope="module")
def airflow_probe(tmp_path_factory) -> dict:
    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-airflow.sh")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    python = Path(made.stdout.strip().splitlines()[-1]) / "bin" / "python"
    tmp = tmp_path_factory.mktemp("airflow")
    (tmp / "bin").mkdir()
    fake = tmp / "bin" / "spark-submit"
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$FAKE_SPARK_ARGV"\n'
        'echo "stand-in spark-submit"\nexit "$FAKE_SPARK_EXIT"\n'
    )
    fake.chmod(0o755)
    home = tmp / "airflow-home"
    env = {
        "PATH": f"{tmp / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # a metadata database the parse must not create (checked below)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(CONNECTION),
        "DEEPIQA_HOME": HOME,
        "FAKE_SPARK_ARGV": str(tmp / "argv"),
        "CHECK_STATE": str(tmp / "state"),
        "CHECKOUT": str(ROOT),
        "OUTCOMES": json.dumps(_outcomes()),
    }
    done = subprocess.run(
        [str(python), "-c", PROBE, str(INFRA / "airflow")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    probe["database_created"] = (home / "airflow.db").exists()
    return probe


@pytest.mark.slow
def test_airflow_loads_the_dag_without_a_database(airflow_probe):
    assert airflow_probe["import_errors"] == {}
    assert airflow_probe["dag_ids"] == ["deepiqa_nightly_audit"]
    assert airflow_probe["database_created"] is False
    assert airflow_probe["schedule"] == "0 2 * * *" and airflow_probe["timezone"] == "UTC"
    assert airflow_probe["catchup"] is False and airflow_probe["max_active_runs"] == 1
    assert airflow_probe["operator"] == (
        "airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator"
    )
    assert airflow_probe["retries"] == 0  # see the DAG: an alert must not be rerun
    tasks = airflow_probe["tasks"]
    assert tasks["check_run"]["upstream"] == ["audit"]
    assert tasks["check_run"]["trigger_rule"] == "all_done"  # whatever the audit task did
    assert tasks["check_alerts"]["upstream"] == ["check_run"]
    assert all(t["retries"] == 0 for t in tasks.values())


@pytest.mark.slow
def test_airflow_tells_an_alert_from_a_broken_job_by_the_outcome(airflow_probe):
    """The task that fails says which: check_run for a run that failed or never finished,
    check_alerts for a fired alert (its log names the rule); both pass on a clean night."""
    checks = airflow_probe["checks"]
    assert checks["ok"] == {"check_run": None, "check_alerts": None}
    assert checks["alert"]["check_run"] is None and checks["alert"]["check_alerts"] is not None
    for broken in ("failed", "stale", "missing"):
        assert checks[broken]["check_run"] is not None, (broken, checks[broken])


@pytest.mark.slow
def test_airflow_task_fails_when_the_audit_exits_non_zero(airflow_probe):
    runs = airflow_probe["runs"]
    assert runs["0"]["error"] is None, runs["0"]
    for code in ("1", "3"):  # an alert fired; the audit could not be done
        assert runs[code]["error"].startswith("AirflowException: Cannot execute"), runs[code]
        assert f"Error code is: {code}" in runs[code]["error"]
    for run in runs.values():  # the command built is the command run
        assert ["spark-submit", *run["argv"]] == airflow_probe["command"]


def check_against_readme(probe: dict, readme_text: str, parser) -> None:
    """The DAG's command, its paths taken relative to DEEPIQA_HOME, is the README's word for
    word; its audit arguments are accepted by the audit job and are the k8s manifest's."""
    command = [word.removeprefix(HOME + "/") for word in probe["command"]]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert {w for w in command if w not in probe["command"]} == {
        "jobs/audit.py",
        f"dist/deepiqa-{version}-py3-none-any.zip",  # what infra/build_wheel.sh writes
        "models/wadiqam-nr.safetensors",
    }
    try:
        readme = readme_command(readme_text)
    except LookupError as exc:
        pytest.fail(f"README.md: {exc} (the nightly audit command goes there)")
    assert command == readme
    audit_args = command[command.index("jobs/audit.py") + 1 :]
    accepted(parser, audit_args, "the DAG's application_args")
    manifest = yaml.safe_load((INFRA / "k8s" / "scheduledsparkapplication-audit.yaml").read_text())
    assert without_weights(manifest["spec"]["template"]["arguments"]) == without_weights(audit_args)


@pytest.mark.slow
def test_airflow_runs_the_readme_command(airflow_probe, audit_parser):
    check_against_readme(airflow_probe, (ROOT / "README.md").read_text(), audit_parser)


# --- Kubernetes (spark-operator) --------------------------------------------------------------


def test_scheduled_spark_application(audit_parser):
    scheduled = yaml.safe_load((INFRA / "k8s" / "scheduledsparkapplication-audit.yaml").read_text())
    assert scheduled["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert scheduled["kind"] == "ScheduledSparkApplication"
    spec = scheduled["spec"]
    assert spec["schedule"] == "0 2 * * *" and spec["concurrencyPolicy"] == "Forbid"
    app = spec["template"]
    # the same image and layout as the score job's application (tests/test_infra.py checks it)
    score = yaml.safe_load((INFRA / "k8s" / "sparkapplication.yaml").read_text())["spec"]
    assert app["image"] == score["image"] and app["sparkVersion"] == score["sparkVersion"]
    assert app["type"] == "Python" and app["mode"] == "cluster"
    assert app["mainApplicationFile"] == "local:///opt/deepiqa/jobs/audit.py"
    assert "COPY jobs/ /opt/deepiqa/jobs/" in (INFRA / "Dockerfile").read_text()
    assert all(isinstance(a, str) for a in app["arguments"])  # the CRD wants strings
    args = accepted(audit_parser, app["arguments"], "the ScheduledSparkApplication")
    assert args.state == "s3a://media/deepiqa/audit"
    # the weights are read on the driver, from the image (no volume nothing fills)
    from .test_infra import image_paths

    assert str(args.weights) in image_paths()
    assert not any("persistentVolumeClaim" in k for k in app["sparkConf"])
    assert alert_rules(app["arguments"]) == ALERTS
    # a failed submission (nothing ran) is retried, a failed run (alert or not) is not
    assert app["restartPolicy"]["type"] == "OnFailure"
    assert app["restartPolicy"]["onFailureRetries"] == 0
    assert app["restartPolicy"]["onSubmissionFailureRetries"] >= 1
    assert all(isinstance(v, str) for v in app["sparkConf"].values())
    assert {"cores", "memory"} <= set(app["driver"]) and app["executor"]["instances"] >= 1


def test_outcome_cronjob_tells_an_alert_from_a_broken_audit(tmp_path, audit_parser):
    """The CronJob after the ScheduledSparkApplication runs jobs/audit_outcome.py from the image
    on the audit's state; run here (the image's paths mapped to the checkout) on each outcome
    a night can leave, it exits 0 / 1 / 3 with its verdict on one line."""
    from .test_infra import image_paths

    cron = yaml.safe_load((INFRA / "k8s" / "cronjob-audit-outcome.yaml").read_text())
    audit = yaml.safe_load((INFRA / "k8s" / "scheduledsparkapplication-audit.yaml").read_text())
    assert cron["kind"] == "CronJob" and cron["spec"]["schedule"] == "0 6 * * *"  # after 02:00
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    (container,) = job["template"]["spec"]["containers"]
    assert container["image"] == audit["spec"]["template"]["image"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    python, script, state, *rest = container["command"]
    assert script in image_paths() or script.startswith("/opt/deepiqa/jobs/")
    assert state == accepted(audit_parser, audit["spec"]["template"]["arguments"], "k8s").state
    expected = {"ok": (0, "OK:"), "alert": (1, "ALERT:"), "failed": (3, "FAILED:")}
    expected.update(stale=(3, "FAILED:"), missing=(3, "FAILED:"))
    for name, text in _outcomes().items():
        folder = tmp_path / name
        folder.mkdir()
        if text is not None:
            (folder / "_OUTCOME").write_text(text)
        local = str(ROOT / "jobs" / Path(script).name)
        system = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        done = subprocess.run(  # a Python without torch or Spark, deepiqa from the checkout
            [system, local, str(folder), *rest],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        )
        code, word = expected[name]
        assert (done.returncode, done.stdout.split(" ", 1)[0]) == (code, word), (name, done)


# --- one machine: systemd ---------------------------------------------------------------------

SYSTEMD = INFRA / "systemd"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_units_verify(tmp_path):
    """``systemd-analyze verify`` finds nothing to say about the units (the audit's executable
    replaced by a stand-in: verify wants ExecStart's program to exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the unit files are parsed below)")
    stand_in = tmp_path / "deepiqa"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    names = sorted(p.name for p in SYSTEMD.iterdir())
    assert names == ["deepiqa-audit-alert@.service", "deepiqa-audit.service", "deepiqa-audit.timer"]
    for name in names:
        text = (SYSTEMD / name).read_text()
        (tmp_path / name).write_text(text.replace("/opt/deepiqa/.venv/bin/deepiqa", str(stand_in)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    calendar = subprocess.run(
        [analyze, "calendar", unit("deepiqa-audit.timer")["Timer"]["OnCalendar"][0]],
        capture_output=True,
        text=True,
    )
    assert calendar.returncode == 0 and "Normalized form: *-*-* 02:00:00" in calendar.stdout


def test_systemd_service_retries_only_runs_that_could_not_be_done(audit_parser):
    service = unit("deepiqa-audit.service")
    run = service["Service"]
    assert run["Type"] == ["oneshot"]
    (exec_start,) = run["ExecStart"]
    words = shlex.split(exec_start)
    assert words[:2] == ["/opt/deepiqa/.venv/bin/deepiqa", "audit"]
    args = cli_audit(words[2:], "the systemd unit's ExecStart")
    accepted(audit_parser, words[2:], "the systemd unit's ExecStart")  # the job's options too
    assert args.state == "/var/lib/deepiqa/audit" and alert_rules(words) == ALERTS
    assert run["StateDirectory"] == ["deepiqa"]  # /var/lib/deepiqa, the state's parent
    # exit 3 is retried; 1 (alert: published) and 2 (usage) are not, and end in the alert unit
    assert run["Restart"] == ["on-failure"]
    assert set(run["RestartPreventExitStatus"][0].split()) == {"1", "2"}
    assert int(service["Unit"]["StartLimitBurst"][0]) >= 2  # the retries end
    (on_failure,) = service["Unit"]["OnFailure"]
    assert on_failure == "deepiqa-audit-alert@%n.service"
    alert = unit("deepiqa-audit-alert@.service")["Service"]
    assert "%i" in alert["ExecStart"][0]  # it reports on the unit that failed
    timer = unit("deepiqa-audit.timer")
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    assert "Unit" not in timer["Timer"]  # so it starts deepiqa-audit.service


# --- one machine: cron ------------------------------------------------------------------------

CRON = INFRA / "cron" / "deepiqa-audit"


def cron_job() -> tuple[dict[str, str], list[str], str]:
    """(variables, the five time fields + user, the command) of the crontab's one job."""
    variables, jobs = {}, []
    for line in CRON.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            key, value = line.split("=", 1)
            variables[key] = value
        else:
            jobs.append(line)
    (job,) = jobs
    fields = job.split(None, 6)
    return variables, fields[:6], fields[6]


@pytest.mark.parametrize("exit_code", [0, 1, 3])
def test_cron_line_mails_only_when_the_audit_fails(exit_code, tmp_path, audit_parser):
    """Runs the crontab's command with /bin/sh as cron does, the audit replaced by a stand-in
    exiting with ``exit_code``: cron mails output, so output must appear exactly on failure."""
    variables, when, command = cron_job()
    assert "." not in CRON.name  # Debian's cron skips /etc/cron.d files with a dot in the name
    assert when == ["0", "2", "*", "*", "*", "deepiqa"] and variables.get("MAILTO")
    words = shlex.split(command.split(" >>", 1)[0])
    assert words[:3] == ["flock", "-n", "-E"] and words[3] not in {"0", "1", "2", "3"}
    audit = words[words.index("/opt/deepiqa/.venv/bin/deepiqa") + 1 :]
    assert audit[0] == "audit"
    args = cli_audit(audit[1:], "the crontab line")
    accepted(audit_parser, audit[1:], "the crontab line")
    assert args.state == "/var/lib/deepiqa/audit" and alert_rules(audit) == ALERTS

    stand_in = tmp_path / "deepiqa"
    stand_in.write_text(f"#!/bin/sh\necho audit output\nexit {exit_code}\n")
    stand_in.chmod(0o755)
    (tmp_path / "log").mkdir()
    (tmp_path / "lib").mkdir()
    local = (
        command.replace("/opt/deepiqa/.venv/bin/deepiqa", str(stand_in))
        .replace("/var/log/deepiqa", str(tmp_path / "log"))
        .replace("/var/lib/deepiqa", str(tmp_path / "lib"))
    )
    done = subprocess.run(["/bin/sh", "-c", local], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert (tmp_path / "log" / "audit.log").read_text() == "audit output\n"
    if exit_code == 0:
        assert done.stdout == ""
    else:
        assert f"exit code {exit_code} " in done.stdout


def test_all_recipes_use_the_same_alert_rules():
    scheduled = yaml.safe_load((INFRA / "k8s" / "scheduledsparkapplication-audit.yaml").read_text())
    (exec_start,) = unit("deepiqa-audit.service")["Service"]["ExecStart"]
    dag = ast.parse((INFRA / "airflow" / "deepiqa_audit_dag.py").read_text())
    (dag_alerts,) = [
        ast.literal_eval(node.value)
        for node in dag.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["ALERTS"]
    ]
    rules = {
        "k8s": alert_rules(scheduled["spec"]["template"]["arguments"]),
        "systemd": alert_rules(shlex.split(exec_start)),
        "cron": alert_rules(shlex.split(cron_job()[2].split(" >>", 1)[0])),
        "airflow": dag_alerts,  # the slow tests check the DAG's command itself
    }
    assert all(r == ALERTS for r in rules.values()), rules


# --- Airflow, for real: `airflow dags test` runs the audit with the real spark-submit ----------


def _dags_test(python: Path, env: dict, cwd: Path) -> dict[str, str]:
    """One `airflow dags test` of the DAG; each task's final state."""
    airflow = [str(python.with_name("airflow"))]
    done = subprocess.run(
        [*airflow, "dags", "test", "deepiqa_nightly_audit"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )
    run_id = re.search(r"run_id=(manual__[^,\s]+)", done.stdout + done.stderr)
    assert run_id, (done.stdout + done.stderr)[-3000:]
    states = subprocess.run(
        [*airflow, "tasks", "states-for-dag-run", "deepiqa_nightly_audit", run_id[1], "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    rows = json.loads(states.stdout.strip().splitlines()[-1])
    return {row["task_id"]: row["state"] for row in rows}


@pytest.mark.slow
def test_airflow_dags_test_runs_the_audit_and_tells_alert_from_broken(tmp_path, weights_dir):
    """The DAG as documented, run by Airflow itself against the real spark-submit (local[2],
    client mode, the README's `--files models/X --weights X`): a clean night passes; a night
    with a corrupt image fails check_alerts only (the run is published); a night another
    driver holds the state fails check_run (the job could not run)."""
    from .conftest import encode, make_image

    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-airflow.sh")], capture_output=True, text=True
    )
    python = Path(made.stdout.strip().splitlines()[-1]) / "bin" / "python"
    home = tmp_path / "deepiqa-home"  # a release: jobs/, the library zip, the weights
    (home / "dist").mkdir(parents=True)
    (home / "models").mkdir()
    (home / "jobs").symlink_to(ROOT / "jobs")
    built = subprocess.run(["bash", str(INFRA / "build_wheel.sh")], capture_output=True, cwd=ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shutil.copy(ROOT / "dist" / f"deepiqa-{version}-py3-none-any.zip", home / "dist")
    shutil.copy(weights_dir / "wadiqam-nr.safetensors", home / "models")
    library, state = tmp_path / "library", tmp_path / "state"
    library.mkdir()
    for i in range(3):
        (library / f"img{i}.png").write_bytes(encode(make_image(48, 64, seed=i)))
    bin_dir = tmp_path / "bin"  # spark-submit of this environment, nothing else of it
    bin_dir.mkdir()
    (bin_dir / "spark-submit").write_text(
        f'#!/bin/sh\nexec {Path(sys.executable).with_name("spark-submit")} "$@"\n'
    )
    (bin_dir / "spark-submit").chmod(0o755)
    (bin_dir / "python3").symlink_to(shutil.which("python3") or sys.executable)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(INFRA / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'db.sqlite'}",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}}
        ),
        "DEEPIQA_HOME": str(home),
        "DEEPIQA_AUDIT_LIBRARY": str(library),
        "DEEPIQA_AUDIT_STATE": str(state),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    (tmp_path / "airflow").mkdir()
    migrate = [str(python.with_name("airflow")), "db", "migrate"]
    assert subprocess.run(migrate, env=env, capture_output=True, timeout=600).returncode == 0

    assert _dags_test(python, env, tmp_path) == {
        "audit": "success",
        "check_run": "success",
        "check_alerts": "success",
    }
    assert json.loads((state / "_OUTCOME").read_text())["outcome"] == "ok"

    (library / "broken.png").write_bytes(b"not an image")  # error_rate>0.01 fires
    assert _dags_test(python, env, tmp_path) == {
        "audit": "failed",  # exit 1: in cluster mode this alone could not say why
        "check_run": "success",
        "check_alerts": "failed",
    }
    outcome = json.loads((state / "_OUTCOME").read_text())
    assert outcome["outcome"] == "alert" and outcome["alerts"][0]["rule"] == "error_rate>0.01"

    now = time.time()
    lease = {"host": "other-node", "pid": 1, "token": "t", "started": now, "renewed": now}
    (state / "_OWNER.json").write_text(json.dumps(lease))  # a live run elsewhere
    (state / "_OUTCOME").write_text(
        json.dumps({**outcome, "finished_at": "2026-01-01T02:00:00Z"})  # last week's
    )
    assert _dags_test(python, env, tmp_path) == {
        "audit": "failed",  # exit 3
        "check_run": "failed",  # no fresh outcome: the job is broken
        "check_alerts": "upstream_failed",
    }
