"""A stand-in for the ``docker`` client, for the tests of infrastructure/scripts (no Docker engine here).

It keeps what matters to the scripts under test and fakes the rest:

- ``docker run``: the container is a new PID namespace (``unshare --pid --fork --mount-proc``, we run as root) whose
  PID 1 is the image's ENTRYPOINT, read from infrastructure/Dockerfile (dumb-init), running the command in the
  repository (the image's WORKDIR), with the image's environment (its ENV lines, RLVR_COMMIT from the build) and the
  ``--env`` options. A bind mount ``-v HOST:CONTAINER`` becomes a path rewrite: every ``--env`` value or argument
  that starts with CONTAINER starts with HOST instead. What Docker would store as the container's configuration
  (its options and environment) is written to ``$FAKE_DOCKER_STATE/<name>.config.json``, so tests can check that
  no secret is in it. GPU, network, user and capability options are recorded only.
- ``docker kill [--signal SIG] NAME``: SIG (default KILL) to the container's PID 1, as Docker does.
- ``docker build``: records its arguments (``RLVR_COMMIT`` is given to the containers it "built").
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def state() -> Path:
    """Where the fake keeps its containers' records (``$FAKE_DOCKER_STATE``)."""
    return Path(os.environ["FAKE_DOCKER_STATE"])


def dockerfile() -> tuple[list[str], dict[str, str]]:
    """The image's ENTRYPOINT and the ENV values that do not depend on build arguments."""
    text = (REPO / "infrastructure" / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    env = {}
    for line in re.findall(r"^ENV (.*)$", text, re.M):
        for key, value in re.findall(r"(\w+)=(\S+)", line):
            if "$" not in value:
                env[key] = value
    return entrypoint, env


def build(args: list[str]) -> int:
    state().mkdir(parents=True, exist_ok=True)
    commit = next((a.split("=", 1)[1] for a in args if a.startswith("RLVR_COMMIT=")), "")
    (state() / "build.json").write_text(json.dumps({"args": args, "RLVR_COMMIT": commit}))
    return 0


def run(args: list[str]) -> int:
    options: dict[str, list[str]] = {}
    env: dict[str, str] = {}
    mounts: list[tuple[str, str]] = []
    i = 0
    flags = {"--rm", "--init", "-i", "-t", "-d"}
    while args[i].startswith("-"):
        opt = args[i]
        if opt in flags:
            options.setdefault(opt, []).append("")
            i += 1
            continue
        value = args[i + 1]
        options.setdefault(opt, []).append(value)
        if opt in ("--env", "-e"):
            key, _, given = value.partition("=")
            env[key] = given if "=" in value else os.environ.get(key, "")
        elif opt in ("-v", "--volume"):
            host, container = value.split(":")[:2]
            mounts.append((container, host))
        i += 2
    image, command = args[i], args[i + 1:]
    name = options["--name"][0]
    state().mkdir(parents=True, exist_ok=True)
    (state() / f"{name}.config.json").write_text(json.dumps({"options": options, "env": env, "image": image,
                                                           "command": command}))

    def rewrite(value: str) -> str:
        for container, host in mounts:
            if value == container or value.startswith(container + "/"):
                return host + value[len(container):]
        return value

    entrypoint, image_env = dockerfile()
    built = json.loads((state() / "build.json").read_text())
    jobs = state() / f"{name}.jobs"  # the image's /tmp, private to this container
    passed = {k: v for k, v in os.environ.items() if not k.startswith(("RLVR_", "AWS_", "FAKE_"))}
    full_env = {**passed, **image_env, "RLVR_COMMIT": built["RLVR_COMMIT"], "RLVR_JOBS_DIR": str(jobs),
                **{k: rewrite(v) for k, v in env.items()}}
    argv = ["unshare", "--pid", "--fork", "--mount-proc", *entrypoint, *[rewrite(a) for a in command]]
    proc = subprocess.Popen(argv, cwd=REPO, env=full_env)
    (state() / f"{name}.pid").write_text(str(proc.pid))
    # A signal to the docker client is not the container's business (docker run does not forward it by default).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    status = proc.wait()
    (state() / f"{name}.pid").unlink(missing_ok=True)
    return 128 - status if status < 0 else status


def pid_one(name: str) -> int | None:
    """The container's PID 1 as seen from here: the child of the ``unshare`` process."""
    path = state() / f"{name}.pid"
    if not path.exists():
        return None
    unshare = int(path.read_text())
    for task in Path(f"/proc/{unshare}/task").glob("*"):
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    return None


def kill(args: list[str]) -> int:
    sig = signal.SIGKILL
    if args[0] in ("--signal", "-s"):
        sig = signal.Signals["SIG" + args[1].removeprefix("SIG")]
        args = args[2:]
    pid = pid_one(args[0])
    if pid is None:
        print(f"Error response from daemon: container {args[0]} is not running", file=sys.stderr)
        return 1
    os.kill(pid, sig)
    return 0


def main() -> int:
    command, args = sys.argv[1], sys.argv[2:]
    return {"build": build, "run": run, "kill": kill}[command](args)


if __name__ == "__main__":
    sys.exit(main())
