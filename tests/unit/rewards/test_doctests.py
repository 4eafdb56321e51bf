"""The examples in the docstrings run: every reward class documents itself with a doctest (TRL's habit)."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

MODULES = ["rlvr.rewards.extract", "rlvr.rewards.scoring", "rlvr.rewards.functions", "rlvr.rewards.verifiers",
           "rlvr.data.finqa", "rlvr.config.resolvers"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_reward_class_has_a_doctest():
    from rlvr.rewards import functions

    rewards = [obj for _, obj in inspect.getmembers(functions, inspect.isclass)
               if obj.__module__ == functions.__name__ and callable(getattr(obj, "__call__", None))]
    assert len(rewards) >= 7
    assert [r.__name__ for r in rewards if ">>>" not in (r.__doc__ or "")] == []
