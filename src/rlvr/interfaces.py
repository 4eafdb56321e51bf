"""The small contracts between the orchestrator and its components, and the typed results they pass.

Components are plain classes built by ``hydra.utils.instantiate`` from ``_target_``; they satisfy these
Protocols structurally (no base classes). Runtime dependencies (model, tokenizer, datasets, scorer) are
passed as arguments, never through a global or the root config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datasets import Dataset

Status = Literal["correct", "wrong", "unparseable", "bad_gold"]


@dataclass(frozen=True)
class Range:
    """The valid range of a numeric setting, declared once, in its component's signature:
    ``learning_rate: Annotated[float, Range(gt=0)]`` (or one of the aliases below). The config check
    (:func:`rlvr.config.validate`) enforces it before anything loads."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    why: str | None = None  # said after the range: "GRPO compares completions within a group"

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (``must be > 0``), or None."""
        ok = ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
              and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))
        return None if ok else f"must be {self.describe()}" + (f" ({self.why})" if self.why else "")

    def describe(self) -> str:
        low = f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}" if self.ge is not None else None
        high = f"< {self.lt:g}" if self.lt is not None else f"<= {self.le:g}" if self.le is not None else None
        if low and high:
            left = "(" if self.gt is not None else "["
            right = ")" if self.lt is not None else "]"
            lo = self.gt if self.gt is not None else self.ge
            hi = self.lt if self.lt is not None else self.le
            return f"in {left}{lo:g}, {hi:g}{right}"
        return low or high or "any number"


# The metrics a preference trainer logs, under TRL's names: its reward margin (chosen minus rejected) and its
# preference accuracy (the share of pairs ranked right). DPO, KTO and CPO/SimPO log ``rewards/*``; RewardTrainer
# logs ``margin`` and ``accuracy``. Diagnostics, the console and the plots read them from here.
PREFERENCE_MARGIN = ("rewards/margins", "margin")
PREFERENCE_ACCURACY = ("rewards/accuracies", "accuracy")

Positive = Annotated[float, Range(gt=0)]  # learning rates, temperatures, clip ranges
NonNegative = Annotated[float, Range(ge=0)]  # KL coefficients, weight decay, warm-up
Probability = Annotated[float, Range(gt=0, le=1)]  # top_p
AtLeastOne = Annotated[int, Range(ge=1)]  # steps, batch sizes, lengths
Count = Annotated[int, Range(ge=0)]  # 0 meaning "none" or "off"


@dataclass(frozen=True)
class Score:
    """How one completion was judged against its row: what was extracted and whether it is right.

    ``status`` separates a wrong answer from no answer at all (``unparseable``) and from a row whose gold
    answer cannot be read (``bad_gold``, a data problem that never earns reward).
    """

    extracted: str | None  # the answer read (canonical for its type), None when there is none
    status: Status
    value: float  # verifier score in [0, 1]: 1 when correct; below 1, the verifier's partial credit (status wrong)
    note: str = ""  # why there is no answer (unparseable) or the gold is unusable (bad_gold)

    @property
    def correct(self) -> bool:
        return self.status == "correct"


@dataclass(frozen=True)
class RewardOutput:
    """What a reward function may return instead of its list of values: the values and a few numbers about the
    batch, which the reward suite logs each step as ``<function name>/<key>`` (a learned reward's disagreement
    with the verifier, an ensemble's spread). A plain list is the same without metrics."""

    values: list[float | None]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class DataSplits:
    """Training and held-out rows. Columns: ``prompt`` (chat messages), ``answer``, ``task``, ``entry`` (with a
    curriculum also ``level``, and ``slot`` in training rows). With ``data.streaming=true`` ``train`` is a
    :class:`rlvr.data.streaming.TrainStream` (read as it trains), ``test`` stays in memory."""

    train: "Dataset"
    test: "Dataset"
    stats: dict[str, Any] = field(default_factory=dict)
    feed: "TrainingFeed | None" = None  # rows chosen as training goes (curriculum, flat prompts skipped)
    pass_rate_filter: Any = None  # drops training prompts by the base model's pass rate before training


@dataclass
class EvalResult:
    """Held-out evaluation of one model at one point (baseline, step N, final)."""

    name: str
    accuracy: float
    n: int
    format_rate: float
    parse_rate: float
    mean_completion_tokens: float
    truncation_rate: float
    repetition_rate: float = 0.0  # share of completions that loop (a 3-word sequence 3+ times)
    per_task: dict[str, float] = field(default_factory=dict)
    per_level: dict[str, float] = field(default_factory=dict)  # with a curriculum: accuracy per "task/L<level>"
    extra: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    step: int | None = None

    def summary(self) -> dict[str, Any]:
        """Everything but the samples: what goes into results.json and metrics.jsonl."""
        out = asdict(self)
        out.pop("samples")
        return out


@dataclass
class TrainResult:
    """What a training loop hands back: the trained model and its log history."""

    model: Any
    global_step: int
    runtime_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_by: str | None = None  # what stopped the loop early after a checkpoint: a signal name, a non-finite loss
    state_dict: dict[str, Any] | None = None  # the full weights gathered on rank 0 when sharded (FSDP, ZeRO-3)


@runtime_checkable
class Verifier(Protocol):
    """Reads and judges one answer type (see :mod:`rlvr.scoring.verifiers`).

    ``read`` turns the text where the final answer stands (``how``: a ``block``, a ``statement`` after a
    marker, or a whole ``reply``) into the answer it states, raising ``UnparseableAnswer`` when it states none;
    ``gold`` checks a raw gold answer at load time (``ValueError``: refused); calling it judges a read answer
    against the row, in [0, 1] (``ValueError``: the row's gold is unusable).
    """

    answer_type: str  # integer, number, expression, string, choice, list or task

    def read(self, text: str, how: str, row: dict[str, Any], fmt: Any) -> str: ...

    def gold(self, raw: str) -> str: ...

    def __call__(self, answer: str, row: dict[str, Any]) -> float: ...


@runtime_checkable
class DataComponent(Protocol):
    """The ``data`` group: training and held-out rows, and the verifier that scores them."""

    def load(self, prompt: Any) -> DataSplits: ...

    @property
    def verifier(self) -> Verifier: ...


@runtime_checkable
class PromptComponent(Protocol):
    """The ``prompts`` group: a question as chat messages, and where the reply must put its answer
    (``answer_format``, a :class:`rlvr.scoring.AnswerFormat` the scorer reads, so the prompt and the reward cannot
    disagree)."""

    answer_format: Any

    def messages(self, question: str) -> list[dict[str, Any]]: ...


@runtime_checkable
class StreamingData(Protocol):
    """A data component that can stream its training rows (``data.streaming``) instead of loading them."""

    streaming: bool


@runtime_checkable
class ModelComponent(Protocol):
    """The ``model`` group: loads the policy and its tokenizer, and saves the trained result."""

    def load(self) -> tuple[Any, Any]: ...

    def save(self, model: Any, tokenizer: Any, path: str, state_dict: dict[str, Any] | None = None) -> str: ...


@runtime_checkable
class TrainEvents(Protocol):
    """What a training loop reports while it runs (the orchestrator turns these into observer events)."""

    def log(self, step: int, metrics: dict[str, float], warnings: list[str]) -> None:
        """Metrics of one logging step, and plain-words warnings about them."""

    def step_end(self, step: int, model: Any) -> None:
        """After each optimizer step (in-training evaluation hooks in here)."""


@dataclass(frozen=True)
class Rewards:
    """The run's reward functions and their weights in the total reward, both by name (the name TRL logs a
    function's mean under: ``rewards/<name>/mean``). Each function is called as TRL calls one:
    ``f(prompts=..., completions=..., **columns) -> list[float | None]`` (None: no reward for that completion).
    The total is :func:`rlvr.rewards.weighted_total`."""

    functions: dict[str, Callable[..., list[float | None]]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    def as_lists(self) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
        """The functions and their weights as TRL's trainers take them: two lists in the same order."""
        return list(self.functions.values()), [self.weights[name] for name in self.functions]


@dataclass
class TrainInputs:
    """Everything a training loop gets: the model, its data, how completions are scored and rewarded, where
    to write, and whom to tell. A loop uses what its algorithm needs (GRPO: rewards; SFT: the rows)."""

    model: Any
    tokenizer: Any
    train: "Dataset"
    scorer: Any  # rlvr.scoring.Scorer: the one notion of "correct"
    output_dir: str
    seed: int
    events: TrainEvents
    rewards: Rewards = field(default_factory=Rewards)  # reward functions and weights, by name
    resume_from: str | None = None  # a complete checkpoint directory to continue from (rlvr.train.checkpoints)
    feed: "TrainingFeed | None" = None  # rows chosen as training goes; only a loop that ``takes_feed`` gets one


@runtime_checkable
class TrainingFeed(Protocol):
    """What each generation batch trains on, decided as training goes (:class:`rlvr.data.feed.Feed`): the
    curriculum's current levels, prompts skipped after flat groups. A loop that samples groups (``takes_feed``)
    asks it for each batch's rows, tells it how they went, logs its metrics and saves its state in checkpoints."""

    def rows(self, step: int, rows: list[dict[str, Any]], group: int, source: Any, seed: int
             ) -> list[dict[str, Any]]:
        """The rows to generate for at ``step`` in place of ``rows`` (groups of ``group`` equal rows); a row
        replaced by the flat-prompt rule is drawn from ``source`` (the training rows), seeded by ``seed``."""

    def observe(self, step: int, rows: list[dict[str, Any]], correct: list[bool], flat: list[bool],
                group: int) -> None:
        """The verdicts of the completions generated for ``rows`` (one per row) and whether each group was flat."""

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def summary(self) -> dict[str, Any]:
        """What ``results.json`` shows: ``{"curriculum": ..., "flat_prompts": ...}`` for the parts in use."""


@runtime_checkable
class RewardComponent(Protocol):
    """The ``reward`` group: the reward functions, adapted to be called as TRL calls them and scored with the
    run's scorer, and their weights, by name; ``close`` stops what it started (worker processes)."""

    weights: dict[str, float]

    def trl_functions(self, scorer: Any) -> Rewards: ...

    def close(self) -> None: ...


@runtime_checkable
class TrainingLoop(Protocol):
    """The ``train`` group (or each of ``pipeline.stages``): one algorithm. ``max_steps`` sizes the progress
    bar."""

    @property
    def max_steps(self) -> int: ...

    def train(self, inputs: TrainInputs) -> TrainResult: ...


@runtime_checkable
class StreamingLoop(Protocol):
    """A training loop that can train on streamed rows (``data.streaming=true``); the others refuse it."""

    def check_streaming(self) -> None:
        """Raise ConfigError when the loop's settings cannot train on a stream (before anything loads)."""


@runtime_checkable
class TakesFeed(Protocol):
    """A training loop that samples groups of completions per prompt (GRPO, RLOO) and so can train on rows a
    :class:`TrainingFeed` chooses as training goes."""

    takes_feed: bool


@runtime_checkable
class InRounds(Protocol):
    """A training loop run in ``rounds`` (``train.rounds``): each round is a stage of its own (trained, evaluated,
    judged by the regression gate, resumed), from the model the last kept round left and with its own seed."""

    rounds: int


@runtime_checkable
class EvaluationComponent(Protocol):
    """The ``eval`` group: held-out evaluation with the training scorer."""

    eval_steps: int
    baseline: bool

    def evaluate(self, model: Any, tokenizer: Any, dataset: Any, scorer: Any, name: str,
                 step: int | None = None) -> EvalResult: ...

    def measures(self) -> set[str]:
        """The metrics its evaluations report (``EvalResult``'s fields and ``extra``'s keys), which the regression
        gate may watch."""


class Observer(Protocol):
    """The ``observers`` group: watches a run through these events, all keyword arguments. Every hook is optional:
    an observer defines the ones it needs and takes ``**_`` for payload it does not read (events may gain keys).
    Observers never change control flow; one that raises is disabled for the rest of the run, not fatal."""

    def on_pipeline_start(self, config: dict[str, Any], run_dir: str, resume_step: int | None) -> None:
        """Before the first stage; ``resume_step``: the step a resumed run continues from (None: a new run)."""

    def on_stage_start(self, stage: str) -> None:
        """Before a pipeline stage (``setup``, ``data``, ``model``, ``rewards``, ``baseline_eval``, ``train``,
        ``final_eval``, ``save``; with ``pipeline.stages``, ``train:<name>`` and ``eval:<name>``)."""

    def on_stage_end(self, stage: str, output: dict[str, Any]) -> None:
        """After a pipeline stage, with what it reports."""

    def on_train_log(self, step: int, max_steps: int, metrics: dict[str, float], warnings: list[str],
                     stage: str) -> None:
        """Every logging step of training (``step``: the optimizer step, counted on across stages)."""

    def on_evaluation(self, result: EvalResult) -> None:
        """Each held-out evaluation: baseline, during training, final (or ``eval``)."""

    def on_pipeline_end(self, status: Literal["success", "failed", "stopped"], error: BaseException | None,
                        results: dict[str, Any]) -> None:
        """Always, also after an exception: ``stopped`` when a signal or a non-finite loss stopped the run after
        a checkpoint (``results["run"]["stopped"]`` says why)."""


EVENTS = tuple(name for name in vars(Observer) if name.startswith("on_"))  # every event, in the order they come


def observer_problem(obj: Any) -> str | None:
    """Why ``obj`` is not an :class:`Observer` (None when it is): it defines none of the events, or a method
    ``on_...`` that is no event (a misspelt hook would silently never be called)."""
    hooks = [name for name in dir(obj) if name.startswith("on_") and callable(getattr(obj, name))]
    unknown = [name for name in hooks if name not in EVENTS]
    if unknown:
        return f"{unknown[0]} is no event (the events: {', '.join(EVENTS)})"
    if not hooks:
        return f"it defines none of the events ({', '.join(EVENTS)})"
    return None
