"""The dispatcher that delivers observer events.

An observer is any object with some of the hooks of :class:`rlvr.interfaces.Observer` (the events, their payload
and when they come; all optional, all keyword arguments). Observers watch; they never change control flow. One
that raises is disabled with a warning, not fatal.
"""

from __future__ import annotations

import logging
from typing import Any

from rlvr.interfaces import EVENTS

log = logging.getLogger(__name__)


class Observers:
    """Delivers each event to every observer that defines it."""

    def __init__(self, observers: list[Any]):
        self.observers = list(observers)
        self.disabled: list[tuple[Any, BaseException]] = []

    def notify(self, event: str, **payload: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"Unknown event {event!r}; events are {EVENTS}")
        for obs in list(self.observers):
            hook = getattr(obs, event, None)
            if hook is None:
                continue
            try:
                hook(**payload)
            except Exception as e:  # noqa: BLE001 - a broken observer must not break training
                log.warning("Observer %s raised in %s (%s: %s); it is disabled for the rest of the run",
                            type(obs).__name__, event, type(e).__name__, e)
                self.observers.remove(obs)
                self.disabled.append((obs, e))
