"""The adversarial validator: measures of a model's held-out completions that catch a policy degenerating while its
accuracy holds, for every evaluation (``eval.validator``) and for the regression gate (``pipeline.gate``).

Every evaluation already reports repetition (``repetition_rate``: completions looping), length
(``mean_completion_tokens``, ``truncation_rate``) and, with ``eval.k >= 2``, ``self_consistency`` (how often the k
samples of a question agree with their majority answer). The validator adds, where configured:

- ``ref_perplexity``: the perplexity of the greedy completions under a reference model (``reference``; the policy
  as loaded is the usual one, ``${model.name_or_path}``, as in ``eval=validated``): fluency as the starting model
  sees it; it climbs when the policy drifts into text the reference finds unlikely (reward hacking, gibberish).
  Token-weighted over every completion token: ``exp(total NLL / total tokens)``.
- ``nli_contradiction_rate`` and ``nli_entailment``: a natural-language-inference model (``nli``: a hub id or a
  directory of an ``AutoModelForSequenceClassification`` whose labels name ``entailment`` and ``contradiction``,
  e.g. ``cross-encoder/nli-deberta-v3-small``) reads the question as premise and the completion as hypothesis: the
  share of completions it says contradict the question, and the mean probability of entailment.

Each sample of ``samples_<name>.jsonl`` gets its own values. Models load at the first evaluation and stay.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne
from rlvr.model import HFModel

log = logging.getLogger(__name__)

PERPLEXITY = "ref_perplexity"
NLI = ("nli_contradiction_rate", "nli_entailment")


@dataclass
class Validation:
    """The validator's settings (``eval.validator``); with neither model set it measures nothing.

    Args:
        reference: the model whose perplexity of the completions is reported (a hub id, directory or
            ``embedded://``, loaded as ``model=hf`` would); null: no ``ref_perplexity``.
        reference_dtype: its dtype (``auto``: bfloat16 on a GPU that has it, else float32).
        nli: a natural-language-inference model (hub id or directory) judging each completion against its
            question; null: no ``nli_*`` measures.
        nli_max_length: tokens of question + completion the NLI model reads (longer pairs are cut).
        batch_size: completions scored together.
    """

    reference: str | None = None
    reference_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    nli: str | None = None
    nli_max_length: AtLeastOne = 512
    batch_size: AtLeastOne = 8


class Validator:
    """Computes the validator's measures with the models its :class:`Validation` names (loaded once)."""

    def __init__(self, settings: Validation | dict[str, Any]):
        self.settings = Validation(**settings) if isinstance(settings, dict) else settings
        self._reference: tuple[Any, Any] | None = None
        self._nli: tuple[Any, Any, int, int] | None = None

    def measures(self) -> set[str]:
        """The names of the measures it reports (what the gate may watch)."""
        return ({PERPLEXITY} if self.settings.reference else set()) | (set(NLI) if self.settings.nli else set())

    def measure(self, prompts: list[list[dict]], completions: list[str]) -> tuple[dict[str, float], list[dict]]:
        """``(summary, per-sample values)`` for chat ``prompts`` and their ``completions``."""
        summary: dict[str, float] = {}
        per_sample: list[dict[str, Any]] = [{} for _ in completions]
        if self.settings.reference:
            nll, tokens = self.perplexity(prompts, completions)
            summary[PERPLEXITY] = math.exp(sum(nll) / max(1, sum(tokens)))
            for sample, n, t in zip(per_sample, nll, tokens):
                sample[PERPLEXITY] = round(math.exp(n / t), 4) if t else None
        if self.settings.nli:
            questions = [next(m["content"] for m in reversed(p) if m["role"] == "user") for p in prompts]
            probs = self.entailment(questions, completions)
            summary[NLI[0]] = sum(p["label"] == "contradiction" for p in probs) / len(probs)
            summary[NLI[1]] = sum(p["entailment"] for p in probs) / len(probs)
            for sample, p in zip(per_sample, probs):
                sample["nli"] = p["label"]
        return summary, per_sample

    # --- reference perplexity -------------------------------------------------------------------------------------
    def reference(self) -> tuple[Any, Any]:
        if self._reference is None:
            log.info("[rlvr] validator: the reference model %s, frozen, for ref_perplexity", self.settings.reference)
            model, tokenizer = HFModel(name_or_path=self.settings.reference, dtype=self.settings.reference_dtype).load()
            model.eval()
            self._reference = (model.requires_grad_(False), tokenizer)
        return self._reference

    def perplexity(self, prompts: list[list[dict]], completions: list[str]) -> tuple[list[float], list[int]]:
        """Per completion: its summed negative log-likelihood under the reference model, given its prompt (the
        reference's chat template), and its token count."""
        import torch

        model, tokenizer = self.reference()
        device = next(model.parameters()).device
        heads = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
        nll, counts = [], []
        side, tokenizer.padding_side = tokenizer.padding_side, "right"  # positions start at 0 in every row
        try:
            for start in range(0, len(heads), self.settings.batch_size):
                head = heads[start : start + self.settings.batch_size]
                tail = completions[start : start + self.settings.batch_size]
                lengths = [len(ids) for ids in tokenizer(head, add_special_tokens=False)["input_ids"]]
                enc = tokenizer([h + c for h, c in zip(head, tail)], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                with torch.inference_mode():
                    logits = model(**enc).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, enc["input_ids"][:, 1:, None])[..., 0]
                for row, start_at in enumerate(lengths):
                    end = int(enc["attention_mask"][row].sum())
                    nll.append(-float(logp[row, start_at - 1 : end - 1].sum()) if end > start_at else 0.0)
                    counts.append(max(0, end - start_at))
        finally:
            tokenizer.padding_side = side
        return nll, counts

    # --- natural-language inference -------------------------------------------------------------------------------
    def nli(self) -> tuple[Any, Any, int, int]:
        """The NLI model, its tokenizer, and the indices of its entailment and contradiction labels."""
        if self._nli is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            name = self.settings.nli
            tokenizer = AutoTokenizer.from_pretrained(name)
            model = AutoModelForSequenceClassification.from_pretrained(name).eval().requires_grad_(False)
            if torch.cuda.is_available():
                model.to("cuda")
            labels = {i: str(label).lower() for i, label in model.config.id2label.items()}
            found = {want: next((i for i, label in labels.items() if label.startswith(want)), None)
                     for want in ("entail", "contradict")}
            if None in found.values():
                raise ConfigError(f"eval.validator.nli={name}: its labels ({', '.join(labels.values())}) do not name "
                                  "entailment and contradiction: it is no NLI model.")
            self._nli = (model, tokenizer, found["entail"], found["contradict"])
        return self._nli

    def entailment(self, premises: list[str], hypotheses: list[str]) -> list[dict[str, Any]]:
        """Per pair: the probability of entailment and the predicted label (``entailment``, ``contradiction`` or
        ``neutral``, the last for any other label)."""
        import torch

        model, tokenizer, entail, contradict = self.nli()
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(premises), self.settings.batch_size):
            enc = tokenizer(premises[start : start + self.settings.batch_size],
                            hypotheses[start : start + self.settings.batch_size], return_tensors="pt", padding=True,
                            truncation=True, max_length=self.settings.nli_max_length).to(device)
            with torch.inference_mode():
                probs = torch.softmax(model(**enc).logits.float(), dim=-1)
            for p in probs:
                top = int(p.argmax())
                label = "entailment" if top == entail else "contradiction" if top == contradict else "neutral"
                out.append({"entailment": float(p[entail]), "label": label})
        return out
