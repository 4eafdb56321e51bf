"""Every reward class documents itself with a doctest (TRL's habit); pytest runs them (--doctest-modules)."""

from __future__ import annotations

import inspect


def test_every_reward_class_has_a_doctest():
    from rlvr.rewards import functions

    rewards = [obj for _, obj in inspect.getmembers(functions, inspect.isclass)
               if obj.__module__ == functions.__name__ and callable(getattr(obj, "__call__", None))]
    assert len(rewards) >= 7
    assert [r.__name__ for r in rewards if ">>>" not in (r.__doc__ or "")] == []
