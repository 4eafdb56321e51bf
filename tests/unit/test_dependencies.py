"""The libraries whose private API we override are pinned in pyproject.toml to the versions the suite runs on, the
installed ones are inside those pins, and the private methods we override exist. When one of these fails after
an upgrade, the message says what to install, or what to check before widening the pin."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# What of each library we rely on beyond its public API: (class, private attributes we override or read).
PRIVATE = {
    "trl": [("trl.GRPOTrainer", ["_generate_single_turn", "_get_per_token_logps_and_entropies", "_calculate_rewards",
                                 "_generate_and_score_completions", "_compute_loss"])],
    "transformers": [("transformers.Trainer", ["_save_checkpoint", "_get_output_dir"])],
}


def pins() -> dict[str, Requirement]:
    """The ``[project] dependencies`` of pyproject.toml, by name."""
    block = re.search(r"^dependencies = \[(.*?)^\]", PYPROJECT.read_text(), flags=re.DOTALL | re.MULTILINE).group(1)
    return {(r := Requirement(text)).name: r for text in re.findall(r'^\s*"([^"]+)"', block, flags=re.MULTILINE)}


@pytest.mark.parametrize("name", sorted(PRIVATE))
def test_a_library_whose_private_api_we_use_is_pinned_and_installed_inside_the_pin(name):
    spec = pins()[name].specifier
    assert any(s.operator in ("<", "<=", "==", "~=") for s in spec), (
        f"pyproject.toml must bound {name} from above ({name}{spec} allows any later version), because rlvr uses "
        f"its private API: {PRIVATE[name]}")
    installed = version(name)
    assert spec.contains(installed, prereleases=True), (
        f"{name} {installed} is installed, but rlvr is tested with {name}{spec}: rlvr uses its private API "
        f"({PRIVATE[name]}), which may have changed. Install a tested version: pip install '{name}{spec}'; or run "
        f"the test suite on {name} {installed} and widen the pin in pyproject.toml.")


@pytest.mark.parametrize(("name", "target", "attributes"),
                         [(name, target, attrs) for name, uses in PRIVATE.items() for target, attrs in uses])
def test_the_private_methods_we_override_exist(name, target, attributes):
    import importlib

    module, _, cls_name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    missing = [a for a in attributes if not hasattr(cls, a)]
    assert not missing, f"{target} in {name} {version(name)} has no {', '.join(missing)}: rlvr.train overrides it."


def test_the_kv_cache_holds_its_tensors_where_we_read_them():
    """The rollout engine and the shared-prefix pass repeat and select a cache's rows through ``cache.layers`` and
    each layer's ``keys``/``values`` (rlvr.train.kv_cache)."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.update(torch.zeros(1, 1, 2, 4), torch.ones(1, 1, 2, 4), 0)
    layer = cache.layers[0]
    assert layer.keys.shape == layer.values.shape == (1, 1, 2, 4), f"transformers {version('transformers')}"


def test_only_bitsandbytes_optional_kernel_notice_is_dropped():
    """bitsandbytes warns at import when it cannot download its optional 4-bit CPU kernel (offline): rlvr drops that
    one notice and passes every other record of the logger."""
    import logging

    import rlvr  # noqa: F401 - installs the filter

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")

    def record(msg: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, msg, (), None)

    assert not logger.filter(record("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ..."))
    assert logger.filter(record("Something else went wrong"))
