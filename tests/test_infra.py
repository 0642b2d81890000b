"""The deployment recipes under infra/: each parses, names files that exist, and passes the
scoring job arguments its own parser accepts."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import load_job

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"


@pytest.fixture(scope="module")
def score_parser():
    return load_job("score").build_parser()


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (INFRA / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def image_paths() -> set[str]:
    """Files the image holds: COPY destinations, by the name they get."""
    paths = set()
    for op, args in dockerfile():
        if op == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            src, dst = parts[:-1], parts[-1]
            paths |= {
                dst.rstrip("/") + "/" + Path(s).name if dst.endswith("/") else dst for s in src
            }
            paths.add(dst.rstrip("/"))
            for source in src:  # a folder's contents land in dst (Docker's COPY dir/ dst/)
                if (ROOT / source).is_dir():
                    paths |= {dst.rstrip("/") + "/" + c.name for c in (ROOT / source).iterdir()}
    return paths


def test_dockerfile_copies_what_exists_and_what_the_manifests_use():
    steps = dockerfile()
    assert steps[0][0] == "ARG" and [op for op, _ in steps].count("FROM") == 2
    for op, args in steps:
        if op == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists() or source == "dist/", source
    assert any("-c /opt/deepiqa/constraints.txt" in a for o, a in steps if o == "RUN")
    assert ("ENTRYPOINT", '["/opt/entrypoint.sh"]') in steps
    build = (INFRA / "build_wheel.sh").read_text()
    assert "-w dist" in build  # the wheel the image installs comes from here
    assert {"/opt/deepiqa/jobs", "/opt/deepiqa/get_gpus_resources.sh"} <= image_paths()


def test_dockerfile_has_the_s3a_connector_the_weights_and_cpu_torch():
    """What the k8s audit's first night needs: s3a:// (hadoop-aws of Spark 4.0.1's Hadoop and
    its AWS SDK bundle in Spark's jars), the weights it names, and no CUDA torch by default."""
    steps = dockerfile()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for o, a in steps if o == "ARG" and "=" in a}
    assert args["HADOOP_AWS_VERSION"] == "3.4.1" and args["AWS_SDK_BUNDLE_VERSION"] == "2.24.6"
    fetch = next(a for o, a in steps if o == "RUN" and "hadoop-aws" in a)
    assert "/opt/spark/jars/hadoop-aws-${HADOOP_AWS_VERSION}.jar" in fetch
    assert "/opt/spark/jars/bundle-${AWS_SDK_BUNDLE_VERSION}.jar" in fetch
    assert "org/apache/hadoop/hadoop-aws/${HADOOP_AWS_VERSION}/" in fetch
    spark_pin = next(
        ln
        for ln in (ROOT / "constraints.txt").read_text().splitlines()
        if ln.startswith("pyspark==")
    )
    minor = ".".join(spark_pin.split("==")[1].split(".")[:2])  # 4.0.x: Hadoop 3.4.1 throughout
    assert args["SPARK_IMAGE"].startswith(f"spark:{minor}.")
    assert args["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    install = next(a for o, a in steps if o == "RUN" and "pip install" in a)
    assert '--index-url "$TORCH_INDEX"' in install  # torch from the CPU index first
    audit = yaml.safe_load((INFRA / "k8s" / "scheduledsparkapplication-audit.yaml").read_text())
    arguments = audit["spec"]["template"]["arguments"]
    weights = arguments[arguments.index("--weights") + 1]
    assert weights in image_paths()
    assert (ROOT / "deepiqa_core/weights/default" / Path(weights).name).is_file()
    conf = audit["spec"]["template"]["sparkConf"]
    assert "DefaultCredentialsProvider" in conf["spark.hadoop.fs.s3a.aws.credentials.provider"]


def test_emr_audit_step_installs_cpu_torch_and_uses_the_iam_policy_s_prefixes():
    audit_parser = load_job("audit").build_parser()
    (step,) = json.loads((INFRA / "emr" / "audit-step.json").read_text())
    args = step["Args"]
    script = next(a for a in args if a.endswith("jobs/audit.py"))
    job = audit_parser.parse_args(args[args.index(script) + 1 :])
    assert job.weights is None  # the shipped default, inside the --py-files zip
    assert "spark.yarn.maxAppAttempts=1" in args  # a second attempt would publish again
    bootstrap = (INFRA / "emr" / "bootstrap.sh").read_text()
    assert "torch_index=${2:-https://download.pytorch.org/whl/cpu}" in bootstrap
    assert '--index-url "$torch_index"' in bootstrap
    policy = json.loads((INFRA / "iam" / "deepiqa-audit-policy.json").read_text())
    grants = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
        for action in actions:
            grants.setdefault(action, set()).add(statement["Resource"])
    library = job.input.removeprefix("s3://").rstrip("/")
    state = job.state.removeprefix("s3://").rstrip("/")
    assert grants["s3:GetObject"] >= {f"arn:aws:s3:::{library}/*", f"arn:aws:s3:::{state}/*"}
    assert grants["s3:PutObject"] == grants["s3:DeleteObject"] == {f"arn:aws:s3:::{state}/*"}
    assert grants["s3:ListBucket"] == {f"arn:aws:s3:::{library.split('/')[0]}"}


@pytest.mark.parametrize("name", ["sparkapplication.yaml", "sparkapplication-gpu.yaml"])
def test_spark_operator_manifests(name, score_parser):
    app = yaml.safe_load((INFRA / "k8s" / name).read_text())
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2" and app["kind"] == "SparkApplication"
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster"
    assert spec["mainApplicationFile"].removeprefix("local://") in {
        p + "/score.py" for p in image_paths()
    }
    args = score_parser.parse_args(spec["arguments"])  # the job accepts them as they are
    assert args.input.startswith("s3://") and args.output and args.resume
    assert all(isinstance(v, str) for v in spec["sparkConf"].values())  # the CRD wants strings
    assert {"cores", "memory"} <= set(spec["driver"]) and spec["executor"]["instances"] >= 1
    assert spec["sparkVersion"].startswith("4.0")
    if "gpu" in name:
        conf = spec["sparkConf"]
        assert spec["executor"]["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1}
        assert conf["spark.executor.resource.gpu.discoveryScript"] in image_paths()
        # one task per GPU with the executor's cores: one model per GPU, decoding beside it
        assert conf["spark.task.resource.gpu.amount"] == "1" and args.precision == "auto"
        assert conf["spark.task.cpus"] == str(spec["executor"]["cores"])
        assert args.patch_budget >= 4096


def test_emr_step_and_bootstrap(score_parser):
    (step,) = json.loads((INFRA / "emr" / "step.json").read_text())
    assert step["Type"] == "Spark" and step["ActionOnFailure"] in ("CONTINUE", "CANCEL_AND_WAIT")
    args = step["Args"]
    script = next(a for a in args if a.endswith("jobs/score.py"))
    job_args = score_parser.parse_args(args[args.index(script) + 1 :])
    assert job_args.resume and job_args.max_error_rate == 0.01
    assert any(a.startswith("spark.pyspark.python=") for a in args)
    bootstrap = INFRA / "emr" / "bootstrap.sh"
    assert subprocess.run(["bash", "-n", str(bootstrap)]).returncode == 0
    assert "constraints-spark35.txt" in bootstrap.read_text()
    assert (ROOT / "constraints-spark35.txt").exists()


def test_databricks_job_spec(score_parser):
    job = json.loads((INFRA / "databricks" / "job.json").read_text())
    (task,) = job["tasks"]
    score_parser.parse_args(task["spark_python_task"]["parameters"])
    assert task["spark_python_task"]["python_file"].endswith("jobs/score.py")
    assert task["libraries"][0]["whl"].endswith(".whl")
    assert task["new_cluster"]["spark_version"].startswith("15.4")  # Spark 3.5, Python 3.11
    assert job["schedule"]["quartz_cron_expression"]


def test_dataproc_submission(score_parser):
    script = INFRA / "dataproc" / "submit.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    command = re.sub(r"\\\n\s*", " ", script.read_text())
    line = next(ln for ln in command.splitlines() if "gcloud dataproc jobs submit pyspark" in ln)
    words = shlex.split(line)
    assert words[words.index("pyspark") + 1] == "jobs/score.py"
    job_args = score_parser.parse_args(words[words.index("--") + 1 :])
    assert job_args.bytes_column == "image" and job_args.output.startswith("gs://")


def test_gpu_properties_file_names_the_script_as_shipped():
    conf = dict(
        ln.split(None, 1)
        for ln in (INFRA / "spark-gpu.conf").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    )
    assert conf["spark.executor.resource.gpu.discoveryScript"] == "./get_gpus_resources.sh"
    assert conf["spark.task.resource.gpu.amount"].strip() == "1"  # one model per GPU
    assert conf["spark.task.cpus"].strip() == conf["spark.executor.cores"].strip()
    assert "--files infra/get_gpus_resources.sh" in (INFRA / "spark-gpu.conf").read_text()
    out = subprocess.run(
        ["bash", str(INFRA / "get_gpus_resources.sh")],
        capture_output=True,
        text=True,
        env={"CUDA_VISIBLE_DEVICES": "2,3", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(out.stdout) == {"name": "gpu", "addresses": ["2", "3"]}


def test_real_data_commands_in_the_readme_parse():
    """README "With real data": every deepiqa / jobs/train.py line is accepted as written."""
    from deepiqa_core.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### With real data", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    lines = [
        re.sub(r"\s+#.*$", "", ln).strip()
        for block in blocks
        for ln in re.sub(r"\\\n\s*", " ", block).splitlines()
    ]
    cli, train = build_parser(), load_job("train").build_parser()
    seen = 0
    for line in filter(None, lines):
        words = shlex.split(line)
        if words[0] == "deepiqa":
            cli.parse_args(words[1:])
        else:
            assert words[:2] == ["spark-submit", "jobs/train.py"], line
            train.parse_args(words[2:])
        seen += 1
    assert seen == 10
