"""infrastructure/scripts/s3_checkpoints.py's clean-up, on a recorded S3 (the whole push and pull against an S3
server: tests/integration/test_spot.py)."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def load():
    spec = importlib.util.spec_from_file_location("s3_checkpoints", REPO / "infrastructure/scripts/s3_checkpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tidied(objects: dict[str, int], newest: int, keep: set[int]) -> list[str]:
    """What ``tidy`` deletes (``aws s3 rm``: a prefix, ending in /, or one object), in order."""
    module = load()
    calls = []

    class Recorded(module.S3):
        def aws(self, *args):
            calls.append(args)
            return ""

    module.tidy(Recorded("s3://bucket/run/"), objects, "checkpoints", newest, keep)
    removed = [next(a for a in c if a.startswith("s3://")) for c in calls if c[:2] == ("s3", "rm")]
    return [url.removeprefix("s3://bucket/run/") for url in removed]


def test_the_newest_checkpoints_upload_prefix_goes_once_it_is_complete():
    """A push stopped after the marker and before deleting the temporary prefix (the periodic push is stopped before
    the last one) left the prefix in S3 for good: the next push deletes it."""
    objects = {"checkpoints/checkpoint-12/model.safetensors": 9, "checkpoints/checkpoint-12/rlvr_state.json": 1,
               "checkpoints/.checkpoint-12.upload/model.safetensors": 9}
    assert tidied(objects, newest=12, keep={12}) == ["checkpoints/.checkpoint-12.upload/"]


def test_an_upload_in_progress_and_the_checkpoints_kept_stay():
    """The newest step's prefix without a complete checkpoint is an upload not finished (the next push resumes it);
    a stale upload of an older step and a rotated checkpoint go, the marker first."""
    objects = {"checkpoints/.checkpoint-12.upload/model.safetensors": 9,
               "checkpoints/.checkpoint-8.upload/model.safetensors": 9,
               "checkpoints/checkpoint-4/rlvr_state.json": 1, "checkpoints/checkpoint-4/model.safetensors": 9,
               "checkpoints/checkpoint-10/rlvr_state.json": 1, "checkpoints/checkpoint-10/model.safetensors": 9}
    assert tidied(objects, newest=12, keep={10, 12}) == [
        "checkpoints/.checkpoint-8.upload/", "checkpoints/checkpoint-4/rlvr_state.json", "checkpoints/checkpoint-4/"]
