"""Difficulty that follows the model: reasoning-gym's own curricula, moved by the verifier's verdicts.

reasoning-gym ships a curriculum for most of its tasks (``reasoning_gym.coaching``): named attributes, each a list
of levels (chain_sum's ``num_terms``: 2, 3, ..., 12 terms; ``num_digits``: 1, ..., 10 digits), moved one level at a
time with ``increment_attr_level`` / ``decrement_attr_level`` and turned into the task's generator config by
``generate_configuration``. ``data.curriculum`` (off until it names an attribute) uses exactly that, per task:

- **Levels.** A task's level ``L`` puts each attribute it moves at ``min(lowest + L, highest)`` of the range of
  attribute levels configured for it (``{num_terms: [0, 3]}``: 2 to 5 terms); the other generator parameters stay
  as ``data.params`` (or the mixture's ``params``) set them. A task of a mixture that is not named stays fixed.
- **Moves.** Before each training step's rows are chosen, each task whose last ``window`` training steps (those that
  had rows of it) are in: one level up when their accuracy exceeds ``raise_above``, one down when it falls below
  ``lower_below``; after a move the task waits a full window at its new level. Accuracy is the share of completions
  the run's :class:`~rlvr.scoring.Scorer` calls ``correct``.
- **Rows.** Training rows are slots: row ``slot`` of a task at level ``L`` is row ``slot`` of that task's pool at
  ``L``, generated once (seeded by the training seed, the task and the level, so a resumed run gets the same rows)
  without any held-out question. TRL's sampler picks the slots, so the data position is TRL's.
- **Held-out sets**, generated when the data loads: ``eval_size`` rows per task and level the run can reach, each
  row marked ``level`` (``chain_sum/L2``), interleaved so that any prefix covers every level; evaluation reports
  accuracy per level.

What a resumed run needs (levels, windows of verdicts, the moves so far) is :meth:`Curriculum.state_dict`, saved in
every checkpoint by the training loop.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Range

log = logging.getLogger(__name__)

Share = Annotated[float, Range(ge=0, le=1)]


@dataclass
class CurriculumSettings:
    """``data.curriculum``: the difficulty of reasoning-gym tasks follows the model's training accuracy.

    Attributes:
        attributes: per task, the attributes of its reasoning-gym curriculum that move and their range of
            attribute levels, ``{chain_sum: {num_terms: [0, 3]}}`` (levels index reasoning-gym's lists: chain_sum's
            num_terms level 0 is 2 terms, level 3 is 5); ``{chain_sum: {}}`` moves every attribute over its whole
            range. Empty: no curriculum. A task of a mixture not named here stays where its params put it.
        start: per task, the level it starts at (default 0: every moving attribute at the low end of its range).
        raise_above: a task's level rises when its accuracy over the last ``window`` steps exceeds this (1: never).
        lower_below: and falls when it is below this (0: never). With both "never" the level stays at ``start``:
            a fixed difficulty, trained and evaluated on the same rows as an adaptive run (the comparison's arms).
        window: training steps (with rows of the task) whose verdicts decide a move; after a move the task waits
            a full window at its new level.
        range_mode: how a range attribute's level becomes the generator's bounds (reasoning-gym's
            ``RangeAttributeMode``): ``upper_bound``, exactly that level's value (num_terms level 3: 5 terms), or
            ``inclusive``, from the attribute's first value up to it (2 to 5 terms).
        eval_size: held-out rows per task and level (null: ``data.test_size``).
    """

    attributes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    start: dict[str, int] = field(default_factory=dict)
    raise_above: Share = 0.8
    lower_below: Share = 0.2
    window: AtLeastOne = 4
    range_mode: Literal["upper_bound", "inclusive"] = "upper_bound"
    eval_size: AtLeastOne | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.attributes)


def level_name(task: str, level: int) -> str:
    """How a level is named in rows, metrics and results: ``chain_sum/L2``."""
    return f"{task}/L{level}"


def derived_seed(seed: int, task: str, level: int) -> int:
    """A generator seed for one task and level, the same in every run with ``seed``."""
    return zlib.crc32(f"{seed}/{task}/{level}".encode())


class TaskLevels:
    """One task's difficulty: its reasoning-gym curriculum, the attributes that move (``ranges``: attribute ->
    (lowest, highest) attribute level) and the level it is at. ``base``: the task's other generator parameters.
    Without ranges the task is fixed at level 0 (and needs no curriculum)."""

    def __init__(self, task: str, ranges: dict[str, tuple[int, int]], base: dict[str, Any],
                 mode: str = "upper_bound"):
        self.task, self.ranges, self.base, self.mode = task, dict(ranges), dict(base), mode
        self.top = max((hi - lo for lo, hi in self.ranges.values()), default=0)
        self.curriculum = _curriculum(task) if self.ranges else None
        self.level = 0
        self.place(0)

    def attribute_levels(self, level: int) -> dict[str, int]:
        """The attribute levels of task level ``level``."""
        return {attr: min(lo + level, hi) for attr, (lo, hi) in self.ranges.items()}

    def place(self, level: int) -> None:
        """Put the task at ``level`` (a run's start, or a resumed run's saved level)."""
        for attr, attr_level in self.attribute_levels(level).items():
            self.curriculum.set_attr_level(attr, attr_level)
        self.level = level

    def move(self, up: bool) -> bool:
        """One level up or down through reasoning-gym's ``increment_attr_level`` / ``decrement_attr_level``;
        False (and nothing moved) at the end of the range."""
        target = self.level + (1 if up else -1)
        if not 0 <= target <= self.top:
            return False
        for attr, attr_level in self.attribute_levels(target).items():
            step = self.curriculum.increment_attr_level if up else self.curriculum.decrement_attr_level
            while self.curriculum.get_attr_level(attr) != attr_level and step(attr):
                pass
        self.level = target
        return True

    def params(self, level: int) -> dict[str, Any]:
        """The task's generator parameters at ``level``: ``base`` with the moving attributes' fields."""
        return {**self.base, **self.moved_params(level)}

    def moved_params(self, level: int) -> dict[str, Any]:
        """The generator fields of the moving attributes at ``level``, from reasoning-gym's
        ``generate_configuration`` (what the level means)."""
        if not self.ranges:
            return {}
        from reasoning_gym.coaching.attributes import RangeAttributeDefinition
        from reasoning_gym.coaching.base_curriculum import DefaultCurriculumContext, RangeAttributeMode

        curriculum = _curriculum(self.task)
        for attr, attr_level in self.attribute_levels(level).items():
            curriculum.set_attr_level(attr, attr_level)
        config = curriculum.generate_configuration(
            defaults=dict(self.base), context=DefaultCurriculumContext(mode=RangeAttributeMode(self.mode)))
        moved: dict[str, Any] = {}
        for attr in self.ranges:
            definition = curriculum.attributes[attr]
            names = ((definition.lower_field_name, definition.upper_field_name)
                     if isinstance(definition, RangeAttributeDefinition) else (definition.field_name,))
            moved.update({name: getattr(config, name) for name in names})
        return moved


def _curriculum(task: str) -> Any:
    from reasoning_gym.factory import create_curriculum

    return create_curriculum(task)


def plan(settings: CurriculumSettings, tasks: dict[str, dict[str, Any]],
         check: Callable[[str, dict[str, Any], str], None]) -> dict[str, TaskLevels]:
    """Every task's :class:`TaskLevels` from ``data.curriculum`` (``tasks``: task -> its base parameters),
    checked before anything loads: the tasks, attributes and levels named exist, the start levels are in range,
    and ``check(task, params, where)`` accepts each level's generator parameters. ConfigError, one line, else."""
    from reasoning_gym.factory import has_curriculum

    if settings.lower_below >= settings.raise_above:
        raise ConfigError(f"data.curriculum.lower_below ({settings.lower_below}) must be below "
                          f"data.curriculum.raise_above ({settings.raise_above}), or a level would move both ways.")
    for key, named in (("attributes", settings.attributes), ("start", settings.start)):
        for task in named:
            if task not in tasks:
                raise ConfigError(f"data.curriculum.{key}.{task}: '{task}' is not a task of this run "
                                  f"(tasks: {', '.join(tasks)}).")
    out = {}
    for task, base in tasks.items():
        where = f"data.curriculum.attributes.{task}"
        named = settings.attributes.get(task)
        if named is not None and not has_curriculum(task):
            raise ConfigError(f"{where}: reasoning-gym has no curriculum for task '{task}' "
                              "(see reasoning_gym.factory.CURRICULA); leave it out to keep it fixed.")
        ranges = _ranges(task, named, where) if named is not None else {}
        levels = TaskLevels(task, ranges, base, settings.range_mode)
        start = settings.start.get(task, 0)
        if not 0 <= start <= levels.top:
            raise ConfigError(f"data.curriculum.start.{task}={start} is outside the levels of {task}: 0.."
                              f"{levels.top} (data.curriculum.attributes.{task}).")
        for level in range(levels.top + 1):
            check(task, levels.params(level), f"data.curriculum: {task} at level {level}")
        out[task] = levels
    return out


def _ranges(task: str, named: dict[str, Any], where: str) -> dict[str, tuple[int, int]]:
    """``{attribute: (lowest, highest)}`` from the config (every attribute over its whole range when none is
    named), each checked against the task's reasoning-gym curriculum."""
    attributes = _curriculum(task).attributes
    if not named:
        return {attr: (0, len(d.levels) - 1) for attr, d in attributes.items()}
    ranges = {}
    for attr, bounds in named.items():
        if attr not in attributes:
            close = difflib.get_close_matches(attr, list(attributes), n=1)
            raise ConfigError(f"Unknown attribute '{where}.{attr}' of reasoning-gym's {task} curriculum."
                              + (f" Did you mean '{close[0]}'?" if close else "")
                              + f" Attributes: {_describe(attributes)}.")
        levels = attributes[attr].levels
        if len(bounds) != 2:
            raise ConfigError(f"'{where}.{attr}' must be [lowest, highest] attribute level, got {bounds}.")
        lo, hi = bounds
        if not 0 <= lo <= hi < len(levels):
            raise ConfigError(f"'{where}.{attr}' must be [lowest, highest] with 0 <= lowest <= highest <= "
                              f"{len(levels) - 1} ({attr}: {_levels(levels)}), got {list(bounds)}.")
        ranges[attr] = (lo, hi)
    return ranges


def _describe(attributes: dict[str, Any]) -> str:
    return "; ".join(f"{name} ({_levels(d.levels)})" for name, d in attributes.items())


def _levels(values: list[Any]) -> str:
    """``levels 0..10 = 2..12``, the levels of an attribute and their values, short."""
    shown = f"{values[0]}..{values[-1]}" if len(values) > 3 else ", ".join(map(str, values))
    return f"levels 0..{len(values) - 1} = {shown}"


Rows = Callable[[str, dict[str, Any], int, int, str], list[dict[str, Any]]]


class Curriculum:
    """The levels of every task of a run, the verdicts that move them, and the rows at each level.

    ``tasks``: each task's :class:`TaskLevels` (started at ``settings.start``); ``rows(task, params, size, seed,
    level)``: ``size`` checked rows of ``task`` generated with ``params`` and ``seed``, marked ``level``.
    """

    def __init__(self, settings: CurriculumSettings, tasks: dict[str, TaskLevels], rows: Rows):
        self.settings, self.tasks, self.make_rows = settings, tasks, rows
        for task, levels in tasks.items():
            levels.place(settings.start.get(task, 0))
        self.windows: dict[str, deque] = {t: deque(maxlen=settings.window) for t in tasks}  # [step, correct, n]
        self.changes: list[dict[str, Any]] = []
        self.decided = 0  # the last step whose levels were decided
        self.reached = {t: levels.level for t, levels in tasks.items()}
        self.slots: dict[str, int] = {}  # training rows (slots) per task
        self.train_seed = 0
        self.held_out: set[str] = set()  # every held-out question, at every level
        self._pools: dict[tuple[str, int], list[dict[str, Any]]] = {}

    # --- rows ------------------------------------------------------------------------------------------------
    def held_out_rows(self, size: int, seed: int) -> list[dict[str, Any]]:
        """``size`` held-out rows per task and level the run can reach, interleaved (a prefix covers every
        level); their questions are kept out of every training pool."""
        sets = [self.make_rows(task, levels.params(level), size, derived_seed(seed, task, level),
                               level_name(task, level))
                for task, levels in self.tasks.items() for level in range(levels.top + 1)]
        self.held_out = {r["question"] for rows in sets for r in rows}
        return [rows[i] for i in range(max(map(len, sets))) for rows in sets if i < len(rows)]

    def training_rows(self, tasks: list[str], seed: int) -> list[dict[str, Any]]:
        """The training slots, one per entry of ``tasks`` (the task of each slot), filled at the start levels."""
        self.slots, self.train_seed = dict(Counter(tasks)), seed
        rank: Counter[str] = Counter()
        out = []
        for task in tasks:
            out.append(self._at(task, self.tasks[task].level, rank[task]))
            rank[task] += 1
        return out

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The training row of ``row``'s slot at its task's current level."""
        return self._at(row["task"], self.tasks[row["task"]].level, row["slot"])

    def pool(self, task: str) -> list[dict[str, Any]]:
        """The training rows of ``task`` at its current level."""
        return self._pool(task, self.tasks[task].level)

    def _at(self, task: str, level: int, slot: int) -> dict[str, Any]:
        pool = self._pool(task, level)
        return {**pool[slot % len(pool)], "slot": slot}

    def _pool(self, task: str, level: int) -> list[dict[str, Any]]:
        key = (task, level)
        if key not in self._pools:
            made = self.make_rows(task, self.tasks[task].params(level), self.slots[task],
                                  derived_seed(self.train_seed, task, level), level_name(task, level))
            kept = [{**r, "slot": i} for i, r in enumerate(r for r in made if r["question"] not in self.held_out)]
            if not kept:
                raise ConfigError(f"Every generated training question of {level_name(task, level)} is held out; "
                                  "raise data.train_size or lower data.curriculum.eval_size.")
            self._pools[key] = kept
        return self._pools[key]

    # --- verdicts and moves ----------------------------------------------------------------------------------
    def observe(self, step: int, rows: list[dict[str, Any]], correct: list[bool]) -> None:
        """Count each row's verdict towards its task's window (one entry per training step)."""
        counts: dict[str, list[int]] = {}
        for row, ok in zip(rows, correct):
            c = counts.setdefault(row["task"], [0, 0])
            c[0] += bool(ok)
            c[1] += 1
        for task, (right, n) in counts.items():
            window = self.windows[task]
            if window and window[-1][0] == step:
                window[-1][1] += right
                window[-1][2] += n
            else:
                window.append([step, right, n])

    def decide(self, step: int) -> list[dict[str, Any]]:
        """Move the levels before ``step``'s rows are chosen (once per step); the moves made."""
        if step <= self.decided:
            return []
        self.decided = step
        moves = []
        for task, levels in self.tasks.items():
            window = self.windows[task]
            if len(window) < self.settings.window:
                continue
            accuracy = self.accuracy(task)
            before = levels.level
            if (accuracy > self.settings.raise_above and levels.move(up=True)) or (
                    accuracy < self.settings.lower_below and levels.move(up=False)):
                window.clear()
                self.reached[task] = max(self.reached[task], levels.level)
                moves.append({"step": step, "task": task, "from": before, "to": levels.level,
                              "accuracy": round(accuracy, 4), "params": levels.moved_params(levels.level)})
                log.info("[rlvr] curriculum: %s level %d -> %d before step %d (training accuracy %.0f%% over %d "
                         "steps; %s)", task, before, levels.level, step, 100 * accuracy, self.settings.window,
                         ", ".join(f"{k}={v}" for k, v in moves[-1]["params"].items()))
        self.changes += moves
        return moves

    def accuracy(self, task: str) -> float | None:
        """The task's training accuracy over its current window (None before any verdict)."""
        window = self.windows[task]
        n = sum(entry[2] for entry in window)
        return sum(entry[1] for entry in window) / n if n else None

    def metrics(self) -> dict[str, float]:
        out = {f"curriculum/level/{task}": float(levels.level) for task, levels in self.tasks.items()}
        for task in self.tasks:
            accuracy = self.accuracy(task)
            if accuracy is not None:
                out[f"curriculum/accuracy/{task}"] = accuracy
        return out

    # --- resume and results ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"levels": {t: levels.level for t, levels in self.tasks.items()},
                "windows": {t: [list(e) for e in w] for t, w in self.windows.items()},
                "changes": list(self.changes), "decided": self.decided, "reached": dict(self.reached)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for task, level in state["levels"].items():
            self.tasks[task].place(level)
        for task, entries in state["windows"].items():
            self.windows[task].clear()
            self.windows[task].extend([list(e) for e in entries])
        self.changes, self.decided, self.reached = list(state["changes"]), state["decided"], dict(state["reached"])

    def summary(self) -> dict[str, Any]:
        """The levels, what each means, and every move: what ``results.json`` shows under ``curriculum``."""
        return {
            "levels": {t: levels.level for t, levels in self.tasks.items()},
            "highest_reached": dict(self.reached),
            "top": {t: levels.top for t, levels in self.tasks.items()},
            "level_params": {level_name(t, lv): levels.moved_params(lv)
                             for t, levels in self.tasks.items() for lv in range(levels.top + 1)},
            "changes": list(self.changes),
            "settings": dataclasses.asdict(self.settings),
        }
