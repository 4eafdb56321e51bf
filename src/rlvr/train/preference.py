"""The preference loops (``dpo``, ``kto``, ``simpo``, ``reward_model``) are one loop: :class:`PreferenceLoop`
holds what they share (their common settings, building the training data from the source ``train.preferences``
names, building the trainer); each algorithm is a short file that adds its own settings and names its TRL
classes. A fifth one (ORPO, say) is such a file plus ``conf/train/<name>.yaml`` (``_target_`` and nothing else)::

    @dataclass(eq=False, kw_only=True)
    class ORPOLoop(PreferenceLoop):
        # the docstring: what ORPO is; Args: beta, the weight of the odds-ratio term
        beta: NonNegative = 0.1

        def trl_classes(self) -> tuple[type, type]:
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer

            return ORPOConfig, ORPOTrainer

``tests/unit/train/test_preference_loops.py`` composes and trains exactly that, from a user's config directory.

``train.preferences=samples`` (the default, RLVR-native) samples ``train.samples_per_prompt`` completions per
training prompt from the policy as it is before training, scores them with the run's verifier and keeps the best
against the worst of each prompt (:func:`rlvr.data.preferences.sample_pairs`); the sampling is seeded and leaves
the training RNG alone, so a resumed run rebuilds the same pairs. ``train.preferences=dataset`` reads the rows'
``chosen``/``rejected`` (or ``completion``/``label``) columns that ``data.columns`` filled.
``train.preferences=refine`` lets the policy critique and refine its wrong samples (``train.refine``,
:mod:`rlvr.data.refine`) and prefers a refined answer that ends correct over the original wrong one
(:func:`rlvr.data.refine.refined_pairs`; KTO: the refined answer desirable, the original not).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rlvr.data.preferences import dataset_labels, dataset_pairs, sample_pairs, unpair
from rlvr.data.refine import Refinement, refined_pairs
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Positive, TrainInputs
from rlvr.train.trl_bridge import TRLLoop, model_args

log = logging.getLogger(__name__)

Source = Literal["samples", "dataset", "refine"]
Reference = Literal["model", "precomputed"]


@dataclass(eq=False, kw_only=True)
class PreferenceLoop(TRLLoop):
    """A preference loop: the settings below, besides those of every TRL loop (:class:`rlvr.train.trl_bridge.
    TRLLoop`), and training on pairs (or labelled examples) built from the policy's samples or from a dataset.

    Args:
        max_length: tokens per prompt + completion; longer ones are cut.
        preferences: where the pairs come from: ``samples`` (the policy's own, scored), ``dataset``, or ``refine``
            (the policy's refined correct answers over its original wrong ones).
        samples_per_prompt: completions sampled per training prompt to pick the best and the worst from.
        sample_prompts: training prompts sampled (the first N rows; null: every row): sampling costs
            ``sample_prompts x samples_per_prompt`` generations before the first step.
        sample_temperature: sampling temperature of those completions.
        sample_batch_size: sequences generated together while sampling.
        refine: how the policy critiques and refines its wrong samples with ``preferences=refine``
            (:class:`rlvr.data.refine.Refinement`).
    """

    form: ClassVar[Literal["pairs", "labels"]] = "pairs"  # KTO trains on labelled examples

    learning_rate: Positive = 1e-6
    max_length: AtLeastOne | None = 512
    preferences: Source = "samples"
    samples_per_prompt: AtLeastOne = 4
    sample_prompts: AtLeastOne | None = 128
    sample_temperature: Positive = 1.0
    sample_batch_size: AtLeastOne = 32
    refine: Refinement = field(default_factory=Refinement)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refine = Refinement.of(self.refine, "train.refine")

    def check(self) -> None:
        if self.preferences == "samples" and self.samples_per_prompt < 2:
            raise ConfigError("train.samples_per_prompt must be >= 2: a pair needs two completions of one prompt.")

    def model(self, inputs: TrainInputs) -> Any:
        """The model the trainer trains: the policy (a reward model replaces it)."""
        return inputs.model

    def trainer(self, inputs: TrainInputs) -> Any:
        """The TRL trainer over the preference data of ``inputs.train`` (built first: sampling needs the policy)."""
        rows = self.rows(inputs)
        model = self.model(inputs)
        return self.build(self.trainer_class(inputs), inputs, model=model, train_dataset=rows,
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(model)))

    def rows(self, inputs: TrainInputs) -> Any:
        """The ``datasets.Dataset`` the trainer trains on: ``{prompt, chosen, rejected}`` pairs or KTO's
        ``{prompt, completion, label}``, from the source ``train.preferences`` names."""
        from datasets import Dataset

        if self.preferences == "dataset":
            setting = "train.preferences=dataset"
            rows = dataset_pairs(inputs.train, setting) if self.form == "pairs" else dataset_labels(inputs.train,
                                                                                                   setting)
            log.info("[rlvr] %d preference %s from the dataset.", len(rows),
                     "pairs" if self.form == "pairs" else "examples")
        else:
            n = self.sample_prompts
            prompts = inputs.train if n is None else inputs.train.select(range(min(n, len(inputs.train))))
            if self.preferences == "refine":
                pairs = refined_pairs(inputs.model, inputs.tokenizer, list(prompts), inputs.scorer, self.refine,
                                      k=self.samples_per_prompt, max_new_tokens=self.max_completion_length,
                                      temperature=self.sample_temperature, batch_size=self.sample_batch_size,
                                      seed=inputs.seed)
                return Dataset.from_list(pairs if self.form == "pairs" else unpair(pairs))
            rows = sample_pairs(inputs.model, inputs.tokenizer, prompts, inputs.scorer, k=self.samples_per_prompt,
                                max_new_tokens=self.max_completion_length, temperature=self.sample_temperature,
                                batch_size=self.sample_batch_size, seed=inputs.seed).rows(self.form)
        return Dataset.from_list(rows)
