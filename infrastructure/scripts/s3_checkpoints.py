#!/usr/bin/env python3
"""The run directory to and from S3, so that S3 never holds half a checkpoint (host side, run by boot.sh).

    python3 s3_checkpoints.py push LOCAL_DIR s3://BUCKET/RUN/ [--deadline EPOCH_S] [--budget S]
    python3 s3_checkpoints.py pull s3://BUCKET/RUN/ LOCAL_DIR

A checkpoint (``checkpoint-N/`` anywhere in the run directory: a run's ``checkpoints/``, a stage's, a sweep job's)
counts as complete only with its marker ``rlvr_state.json``, which rlvr writes last (the same rule as on disk).
``push`` publishes the newest complete local checkpoint of each directory in four steps:

1. its files, all but the marker, go to a temporary prefix ``.checkpoint-N.upload/`` (``aws s3 sync``: a push
   cut short and tried again sends only what is missing);
2. they are copied inside S3 to ``checkpoint-N/`` and every name and size there is checked against the local
   files;
3. the marker is written last: only now does ``checkpoint-N`` exist for ``pull``;
4. the temporary prefix and the checkpoints the run has rotated out (older ones it no longer holds on disk) are
   deleted, each marker first.

The other files of the run follow, and last the files that say how far the run got (``results.json``, a stage's
``stage.json``), as they were when every complete checkpoint was in S3, so S3 never says "finished" or "stage done"
before it holds what goes with it. ``pull`` downloads the newest complete checkpoint of each directory (never the
rotated ones, never a marker-less one) and the other files. Only the Python standard library and the AWS CLI are
used: the Deep Learning AMI has both. ``--deadline`` (seconds since the epoch) bounds every transfer: what does not
fit stays unpublished, and the previous checkpoint stands. ``--budget`` warns when publishing took longer than the
share of a spot notice left for it (boot.sh passes it on every periodic push, so the budget is checked with the
sizes and the network of the real machine).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKER = "rlvr_state.json"
LAST = ("results.json", "stage.json")  # how far the run got: a run's (and a sweep job's) results, a stage's marker
CHECKPOINT = re.compile(r"^(?:(.*)/)?checkpoint-(\d+)$")
REMOTE_MARKER = re.compile(r"^(?:(.*)/)?checkpoint-(\d+)/" + re.escape(MARKER) + "$")
IN_CHECKPOINT = re.compile(r"(^|/)\.?checkpoint-\d+(\.tmp|\.upload)?/")
KEEP_OUT = ["--exclude", "*checkpoint-*"]  # aws s3 sync filters: checkpoints (and their temporary copies) apart


class DeadlineReached(Exception):
    """The time left (``--deadline``) ran out: what was being published stays invisible."""


def log(message: str) -> None:
    print(f"rlvr-s3: {message}", flush=True)


class S3:
    """The AWS CLI on one ``s3://bucket/prefix/``, every call bounded by the deadline."""

    def __init__(self, url: str, deadline: float | None = None):
        match = re.fullmatch(r"s3://([^/]+)/(.*?)/?", url)
        if not match:
            raise SystemExit(f"rlvr-s3: not an s3://bucket/prefix/ address: {url}")
        self.bucket, self.prefix = match.group(1), match.group(2) + "/" if match.group(2) else ""
        self.deadline = deadline

    def url(self, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{rel}"

    def aws(self, *args: str) -> str:
        timeout = None
        if self.deadline is not None:
            timeout = self.deadline - time.time()
            if timeout <= 0:
                raise DeadlineReached(" ".join(args[:2]))
        try:
            proc = subprocess.run(["aws", *args, "--only-show-errors"] if args[0] == "s3" else ["aws", *args],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise DeadlineReached(" ".join(args[:2])) from e
        if proc.returncode != 0:
            raise RuntimeError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def objects(self, rel: str = "") -> dict[str, int]:
        """Every object under the prefix (or ``rel`` below it): its path relative to the prefix, and its size."""
        out = self.aws("s3api", "list-objects-v2", "--bucket", self.bucket, "--prefix", self.prefix + rel,
                       "--output", "json")
        contents = (json.loads(out).get("Contents") or []) if out.strip() else []
        return {o["Key"][len(self.prefix):]: int(o["Size"]) for o in contents}


def local_files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def newest_local_checkpoints(root: Path) -> dict[str, int]:
    """``{directory: step}``: the newest complete checkpoint of each directory holding checkpoints."""
    newest: dict[str, int] = {}
    for marker in root.rglob(f"checkpoint-*/{MARKER}"):
        match = CHECKPOINT.match(marker.parent.relative_to(root).as_posix())
        if match and not IN_CHECKPOINT.search((match.group(1) or "") + "/"):
            where, step = match.group(1) or "", int(match.group(2))
            newest[where] = max(step, newest.get(where, -1))
    return newest


def complete_remote_checkpoints(objects: dict[str, int]) -> dict[str, set[int]]:
    """``{directory: {steps}}`` of the checkpoints in S3 that have their marker."""
    found: dict[str, set[int]] = {}
    for key in objects:
        match = REMOTE_MARKER.match(key)
        if match:
            found.setdefault(match.group(1) or "", set()).add(int(match.group(2)))
    return found


def join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


def publish(s3: S3, root: Path, where: str, step: int, budget: float | None) -> None:
    """Steps 1-3 of the module docstring for ``where/checkpoint-step``."""
    name = join(where, f"checkpoint-{step}")
    staging = join(where, f".checkpoint-{step}.upload")
    local = root / name
    expected = {k: v for k, v in local_files(local).items() if k != MARKER}
    began = time.time()
    s3.aws("s3", "sync", str(local), s3.url(staging + "/"), "--exclude", MARKER, "--delete")
    uploaded = time.time()
    s3.aws("s3", "sync", s3.url(staging + "/"), s3.url(name + "/"), "--delete")
    there = {k[len(name) + 1:]: v for k, v in s3.objects(name + "/").items()}
    if there != expected:
        missing = sorted(set(expected.items()) ^ set(there.items()))[:3]
        raise RuntimeError(f"{name} in S3 differs from the local files ({missing}): not published")
    s3.aws("s3", "cp", str(local / MARKER), s3.url(f"{name}/{MARKER}"))
    took = time.time() - began
    s3.aws("s3", "rm", "--recursive", s3.url(staging + "/"))
    size = sum(expected.values()) / 1e6
    log(f"published {name} ({size:.1f} MB) in {took:.1f} s (upload {uploaded - began:.1f} s, copy and check "
        f"{took - (uploaded - began):.1f} s)")
    if budget is not None and took > budget:
        log(f"WARNING: publishing {name} took {took:.0f} s, more than the {budget:.0f} s a spot notice leaves for "
            "it: after a notice the run would resume from the checkpoint before (lower train.save_steps' cost, "
            "raise the disk or network throughput, or give the stop more of the notice)")


def tidy(s3: S3, objects: dict[str, int], where: str, newest: int, keep: set[int]) -> None:
    """Step 4: temporary prefixes and rotated (or never completed) checkpoints of ``where`` older than ``newest``;
    a marker goes first, so ``pull`` never sees a checkpoint whose files are being deleted. The newest step's
    temporary prefix goes too once that checkpoint is complete: a push stopped between writing the marker and
    deleting the prefix (the periodic push is stopped before the last one) leaves it behind."""
    complete = complete_remote_checkpoints(objects).get(where, set())
    prefixes = {re.sub(r"/.*", "", k[len(where) + 1:] if where else k) for k in objects
                if not where or k.startswith(where + "/")}
    for prefix in sorted(prefixes):
        match = re.fullmatch(r"(\.?)checkpoint-(\d+)(\.upload)?", prefix)
        if not match:
            continue
        step, temporary = int(match.group(2)), bool(match.group(3))
        if temporary and (step != newest or step in complete) or not temporary and step < newest and step not in keep:
            if step in complete and not temporary:
                s3.aws("s3", "rm", s3.url(join(where, f"{prefix}/{MARKER}")))
            s3.aws("s3", "rm", "--recursive", s3.url(join(where, prefix) + "/"))


def push(root: Path, s3: S3, budget: float | None) -> None:
    if not root.is_dir():  # the pipeline never started
        return
    objects = s3.objects()
    published = complete_remote_checkpoints(objects)
    pending = {w: n for w, n in newest_local_checkpoints(root).items() if n not in published.get(w, set())}
    for where, step in sorted(pending.items()):
        publish(s3, root, where, step, budget)
        published.setdefault(where, set()).add(step)
    for where, step in sorted(newest_local_checkpoints(root).items()):
        on_disk = {int(p.name.split("-")[1]) for p in (root / where).glob("checkpoint-*") if (p / MARKER).is_file()}
        tidy(s3, objects, where, step, on_disk)
    # The other files (metrics, samples, logs, a stage's weights, the model), then the files that say how far the
    # run got (LAST), as they were before checking that every complete checkpoint is in S3: rlvr writes them after
    # the checkpoint and the files they vouch for, so S3 never says "stage done" or "finished" before it holds
    # what goes with it.
    last = [arg for name in LAST for arg in ("--exclude", name, "--exclude", f"*/{name}")]
    s3.aws("s3", "sync", str(root), s3.url(), *KEEP_OUT, *last)
    with tempfile.TemporaryDirectory() as snapshot:
        for name in LAST:
            for path in root.rglob(name):
                rel = path.relative_to(root)
                if not IN_CHECKPOINT.search(rel.as_posix()):
                    (Path(snapshot) / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, Path(snapshot) / rel)
        behind = [join(w, f"checkpoint-{n}") for w, n in newest_local_checkpoints(root).items()
                  if n not in published.get(w, set())]
        if behind:
            log(f"{' and '.join(LAST)} wait for {', '.join(behind)} (written during this push) to be published")
            return
        s3.aws("s3", "sync", snapshot, s3.url())


def pull(s3: S3, root: Path) -> None:
    objects = s3.objects()
    root.mkdir(parents=True, exist_ok=True)
    for where, steps in sorted(complete_remote_checkpoints(objects).items()):
        name = join(where, f"checkpoint-{max(steps)}")
        s3.aws("s3", "sync", s3.url(name + "/"), str(root / name), "--exclude", MARKER)
        s3.aws("s3", "cp", s3.url(f"{name}/{MARKER}"), str(root / name / MARKER))  # last: complete on disk too
        log(f"restored {name}")
    s3.aws("s3", "sync", s3.url(), str(root), *KEEP_OUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("direction", choices=["push", "pull"])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--deadline", type=float, help="seconds since the epoch by which to give up")
    parser.add_argument("--budget", type=float, help="warn when publishing a checkpoint takes longer (seconds)")
    args = parser.parse_args(argv)
    try:
        if args.direction == "push":
            push(Path(args.source), S3(args.target, args.deadline), args.budget)
        else:
            pull(S3(args.source, args.deadline), Path(args.target))
    except DeadlineReached as e:
        log(f"out of time during {e}: what was being published stays invisible; the previous checkpoint stands")
        return 3
    except RuntimeError as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
