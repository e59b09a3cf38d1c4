"""
One order for everything the core delivers, even when some deliveries wait for a commit.

A room message may only be shown once it is stored, but what the core decides after it (a
nick change, a join) must not overtake it. L{Outbox} runs each delivery in the order it was
asked for, holding it behind any earlier one still waiting on its Deferred. Owned by the core;
it calls the core's own delivery functions and touches no transport.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


class _Step:
    __slots__ = ("action", "args", "sequenced")

    def __init__(self, action: Callable[..., None] | None, args: tuple[Any, ...] = (), sequenced: bool = False) -> None:
        self.action = action  # None while still waiting
        self.args = args
        self.sequenced = sequenced  # waits for its place in the cluster's one order


class Outbox:
    """
    Runs delivery actions in the order they were given, each after every earlier one.

    C{on_idle}, if given, is called each time a run of actions ends (the core flushes the
    connections it wrote to then, so that everything one run delivers leaves in one write).
    """

    def __init__(self, on_idle: Callable[[], None] | None = None) -> None:
        self._steps: deque[_Step] = deque()
        self._draining = False
        self._on_idle = on_idle

    @property
    def waiting(self) -> int:
        """How many actions are held back (0 when everything has been run)."""
        return len(self._steps)

    def now(self, action: Callable[..., None], *args: Any) -> None:
        """
        Run C{action(*args)} now, or as soon as everything asked for before it has run, including
        an action still running (so a delivery that causes another never has it overtake itself).
        """
        self._steps.append(_Step(action, args))
        self._drain()

    def after(
        self,
        waiting: Deferred[Any],
        action: Callable[[Any], None],
        failed: Callable[[Failure], None],
        sequenced: bool = False,
    ) -> None:
        """
        Once C{waiting} fires, run C{action(result)} (or C{failed(failure)}) in this action's turn:
        after everything asked for before it, and before everything asked for after it. With
        C{sequenced}, C{waiting} fires when the action's place in the cluster's one order has
        come (see L{in_sequence}).
        """
        step = _Step(None, sequenced=sequenced)
        self._steps.append(step)

        def fired(result: Any) -> None:
            step.action, step.args = (failed, (result,)) if isinstance(result, Failure) else (action, (result,))
            self._drain()

        waiting.addBoth(fired)

    def in_sequence(self, action: Callable[..., None], *args: Any) -> None:
        """
        Run C{action(*args)}, something another process announced, in its place in the cluster's
        one order: before every sequenced action still waiting (their turns come later in that
        order), else as L{now} would.
        """
        steps = self._steps
        for index, step in enumerate(steps):
            if step.sequenced and step.action is None:
                steps.insert(index, _Step(action, args))
                break
        else:
            steps.append(_Step(action, args))
        self._drain()

    def as_one(self, fire: Callable[[], None]) -> None:
        """
        Call C{fire}, which may fire several Deferreds given to L{after} (a batch of commits),
        and only then run what became ready: one run, so their deliveries leave together.
        """
        if self._draining:
            fire()
            return
        self._draining = True
        try:
            fire()
        finally:
            self._draining = False
        self._drain()

    def _drain(self) -> None:
        if self._draining:
            return  # the loop below, further up the stack, will get to it
        self._draining = True
        try:
            steps = self._steps
            while steps and steps[0].action is not None:
                step = steps.popleft()
                self._run(step.action, step.args)  # type: ignore[arg-type]
        finally:
            self._draining = False
        if self._on_idle is not None:
            self._run(self._on_idle, ())

    @staticmethod
    def _run(action: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            action(*args)
        except Exception:
            log.failure("a delivery action failed")
