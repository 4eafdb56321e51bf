"""PPO with a learned critic, ours: TRL 1.16 has no PPO trainer (its PPOTrainer was removed), and the RLVR
setting needs little of what a general one carries.

Each step:

1. the policy samples one completion per prompt for ``prompts_per_step`` training prompts (a seeded permutation
   of the rows, so a resumed run sees the same ones);
2. the reward functions score them (sequence-level reward on the last token), and each token is charged
   ``kl_coef x KL`` to a frozen reference (the starting policy);
3. the critic (a copy of the policy with a scalar value head on its last hidden state) values every state; GAE
   turns rewards and values into advantages and returns (:mod:`rlvr.train.ppo_math`);
4. ``ppo_epochs`` passes over mini-batches minimise the clipped policy loss (policy optimizer) and the clipped
   value loss (critic optimizer).

Checkpoints (``checkpoint-N/``, written atomically like the Trainer-based loops': staging directory, fsync,
rename, ``rlvr_state.json`` last) hold the policy's trainable weights, the critic, both optimizers, every RNG
state and the step; ``resume_from`` continues exactly. One process (a launcher's DDP is not wired in yet).
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import torch

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, Probability, Range, TrainInputs, TrainResult
from rlvr.model.weights import restore, trainable_state
from rlvr.rewards import weighted_total
from rlvr.schema import checked
from rlvr.train import ppo_math
from rlvr.train.checkpoints import STATE_FILE, StopOnSignal, complete
from rlvr.train.diagnostics import Diagnoser

log = logging.getLogger(__name__)


class Critic(torch.nn.Module):
    """A value model: a copy of the policy's network with a linear head mapping each position's last hidden state
    to a scalar value (the head starts at zero, so the first values are 0)."""

    def __init__(self, policy: Any):
        super().__init__()
        self.body = copy.deepcopy(policy)
        hidden = self.body.config.get_text_config().hidden_size
        self.head = torch.nn.Linear(hidden, 1, device=next(policy.parameters()).device,
                                    dtype=next(policy.parameters()).dtype)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.body(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return self.head(out.hidden_states[-1]).squeeze(-1)


@checked("train")
class PPOLoop:
    """Proximal Policy Optimization with a value model, GAE and a KL penalty to the reference.

    Args:
        max_steps: PPO steps (each: sample, score, several optimisation passes).
        learning_rate: the policy's learning rate.
        critic_learning_rate: the value model's learning rate.
        prompts_per_step: training prompts sampled per step (one completion each).
        mini_batch_size: completions per optimisation mini-batch.
        ppo_epochs: passes over each step's completions.
        max_completion_length: tokens per completion.
        temperature, top_p: sampling.
        kl_coef: per-token penalty on the KL to the reference policy, added to the reward.
        kl_estimator: ``k1`` (log-ratio) or ``k3`` (non-negative, lower variance).
        gamma, lam: discount and GAE lambda (1.0 and 0.95: rewards come at the end of a completion).
        clip_range: policy ratio clip (epsilon).
        clip_range_value: value clip around the values at sampling time.
        whiten_advantages: normalise advantages over each step's real tokens.
        max_grad_norm: gradient clipping (each model).
        logging_steps: log every N steps.
        save_steps: checkpoint every N steps, and at the last one (0: none, so no resume).
        keep_checkpoints: the newest checkpoints kept.
    """

    def __init__(
        self,
        max_steps: AtLeastOne = 20,
        learning_rate: Positive = 1e-6,
        critic_learning_rate: Positive = 1e-5,
        prompts_per_step: AtLeastOne = 16,
        mini_batch_size: AtLeastOne = 8,
        ppo_epochs: AtLeastOne = 2,
        max_completion_length: AtLeastOne = 40,
        temperature: Positive = 1.0,
        top_p: Probability = 1.0,
        kl_coef: NonNegative = 0.05,
        kl_estimator: Literal["k1", "k3"] = "k1",
        gamma: Annotated[float, Range(ge=0, le=1)] = 1.0,
        lam: Annotated[float, Range(ge=0, le=1)] = 0.95,
        clip_range: Positive = 0.2,
        clip_range_value: Positive = 0.2,
        whiten_advantages: bool = True,
        max_grad_norm: Positive = 1.0,
        logging_steps: AtLeastOne = 1,
        save_steps: Count = 10,
        keep_checkpoints: AtLeastOne = 2,
    ):
        if prompts_per_step % mini_batch_size:
            raise ConfigError(f"train.prompts_per_step ({prompts_per_step}) must be a multiple of "
                              f"train.mini_batch_size ({mini_batch_size}).")
        self.settings = {k: v for k, v in locals().items() if k != "self"}

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    # --- the loop ----------------------------------------------------------------------------------------------
    def train(self, inputs: TrainInputs) -> TrainResult:
        if distributed.world_size() > 1:
            raise ConfigError("train=ppo runs in one process for now; launch it without torchrun/accelerate.")
        s = self.settings
        policy, tokenizer = inputs.model, inputs.tokenizer
        tokenizer.padding_side = "left"
        reference = copy.deepcopy(policy).eval().requires_grad_(False)  # the starting policy
        critic = Critic(policy)
        optimizers = {
            "policy": torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=s["learning_rate"]),
            "critic": torch.optim.AdamW([p for p in critic.parameters() if p.requires_grad],
                                        lr=s["critic_learning_rate"]),
        }
        order = torch.randperm(len(inputs.train), generator=torch.Generator().manual_seed(inputs.seed)).tolist()
        start = 0
        if inputs.resume_from:
            start = self._load(Path(inputs.resume_from), policy, critic, optimizers)
            log.info("[rlvr] PPO resumed at step %d from %s", start, inputs.resume_from)
        diagnoser = Diagnoser(max_completion_length=s["max_completion_length"])
        history: list[dict[str, float]] = []
        began = time.perf_counter()
        step, stopped = start, None
        with StopOnSignal() as stop:
            for step in range(start + 1, s["max_steps"] + 1):
                rows = [inputs.train[order[(i + (step - 1) * s["prompts_per_step"]) % len(order)]]
                        for i in range(s["prompts_per_step"])]
                metrics = self._step(step, rows, policy, reference, critic, optimizers, inputs)
                if step % s["logging_steps"] == 0 or step == s["max_steps"]:
                    history.append({"step": step, **metrics})
                    inputs.events.log(step, metrics, diagnoser.update(metrics, final=step == s["max_steps"]))
                last = step == s["max_steps"]
                if s["save_steps"] and (step % s["save_steps"] == 0 or last or stop.received):
                    self._save(Path(inputs.output_dir), step, policy, critic, optimizers)
                inputs.events.step_end(step, policy)
                if stop.received:
                    stopped = stop.received
                    break
        return TrainResult(policy, step, time.perf_counter() - began, history, stopped_by=stopped)

    def _step(self, step: int, rows: list[dict[str, Any]], policy: Any, reference: Any, critic: Critic,
              optimizers: dict[str, Any], inputs: TrainInputs) -> dict[str, float]:
        s = self.settings
        tokenizer = inputs.tokenizer
        texts = tokenizer.apply_chat_template([r["prompt"] for r in rows], add_generation_prompt=True, tokenize=False)
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(policy.device)
        torch.manual_seed(inputs.seed * 100_003 + step)  # the step's samples do not depend on what ran before
        policy.eval()
        with torch.no_grad():
            out = policy.generate(**enc, do_sample=True, temperature=s["temperature"], top_p=s["top_p"], top_k=0,
                                  max_new_tokens=s["max_completion_length"], pad_token_id=tokenizer.pad_token_id)
        prompt_len = enc["input_ids"].size(1)
        completion = out[:, prompt_len:]
        mask = _completion_mask(completion, _eos_ids(policy, tokenizer))
        input_ids = torch.cat([enc["input_ids"], completion], dim=1)
        attention = torch.cat([enc["attention_mask"], mask.long()], dim=1)
        texts_out = tokenizer.batch_decode(completion * mask.long() + tokenizer.pad_token_id * (1 - mask.long()),
                                           skip_special_tokens=True)
        scores, reported = self._rewards(rows, texts_out, inputs, step)
        with torch.no_grad():
            old_logps = _logps(policy, input_ids, attention, prompt_len, s["temperature"])
            ref_logps = _logps(reference, input_ids, attention, prompt_len, s["temperature"])
            old_values = critic(input_ids, attention)[:, prompt_len - 1:-1].float()
        mask = mask.float()
        kl = ppo_math.kl_penalty(old_logps, ref_logps, s["kl_estimator"]) * mask
        rewards = -s["kl_coef"] * kl
        last = (mask.sum(1).long() - 1).clamp(min=0)
        rewards[torch.arange(len(rows)), last] += scores
        advantages, returns = ppo_math.gae(rewards, old_values, mask, s["gamma"], s["lam"])
        if s["whiten_advantages"]:
            advantages = ppo_math.whiten(advantages, mask)

        policy.train()
        critic.train()
        stats: dict[str, list[float]] = {"loss": [], "value_loss": [], "clipfrac": [], "approx_kl": []}
        for _ in range(s["ppo_epochs"]):
            for batch in torch.randperm(len(rows)).split(s["mini_batch_size"]):
                ids, att, m = input_ids[batch], attention[batch], mask[batch]
                logps = _logps(policy, ids, att, prompt_len, s["temperature"])
                loss, clipfrac, approx_kl = ppo_math.policy_loss(logps, old_logps[batch], advantages[batch], m,
                                                                 s["clip_range"])
                values = critic(ids, att)[:, prompt_len - 1:-1].float()
                v_loss = ppo_math.value_loss(values, old_values[batch], returns[batch], m, s["clip_range_value"])
                for name, objective, model in (("policy", loss, policy), ("critic", v_loss, critic)):
                    optimizers[name].zero_grad()
                    objective.backward()
                    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                   s["max_grad_norm"])
                    optimizers[name].step()
                for key, value in (("loss", loss), ("value_loss", v_loss), ("clipfrac", clipfrac),
                                   ("approx_kl", approx_kl)):
                    stats[key].append(value.item())
        lengths = mask.sum(1)
        correct = [inputs.scorer(t, r).correct for t, r in zip(texts_out, rows)] if inputs.scorer else []
        return {
            "reward": scores.mean().item(),
            "reward_std": scores.std().item() if len(rows) > 1 else 0.0,
            **({"score/accuracy": sum(correct) / len(correct)} if correct else {}),
            "kl": (kl.sum(1) / lengths.clamp(min=1)).mean().item(),
            "completions/mean_length": lengths.mean().item(),
            "completions/clipped_ratio": (lengths >= s["max_completion_length"]).float().mean().item(),
            "value/mean": ppo_math.masked_mean(old_values, mask).item(),
            **{k: sum(v) / len(v) for k, v in stats.items()},
            **reported,
        }

    def _rewards(self, rows: list[dict[str, Any]], texts: list[str], inputs: TrainInputs, step: int
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted sum of the reward functions (called as TRL calls them: prompts, completions, columns, the
        trainer's state, whose ``global_step`` seeds a control run's coins, and ``log_metric`` for what they report
        about the batch, returned beside it with each function's mean, ``rewards/<name>/mean``); a completion no
        function scored earns 0 (it has no group to be left out of, as in GRPO)."""
        completions = [[{"role": "assistant", "content": t}] for t in texts]
        columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
        reported: dict[str, float] = {}
        prompts, state = [r["prompt"] for r in rows], SimpleNamespace(global_step=step)
        values = {name: fn(prompts=prompts, completions=completions, trainer_state=state,
                           log_metric=reported.__setitem__, **columns)
                  for name, fn in inputs.rewards.functions.items()}
        for name, vals in values.items():  # each function's mean, under the name GRPO's TRL logs it with
            scored = [v for v in vals if v is not None]
            if scored:
                reported[f"rewards/{name}/mean"] = sum(scored) / len(scored)
        total = weighted_total(values, inputs.rewards.weights).nan_to_num(nan=0.0)
        return total.to(next(inputs.model.parameters()).device), reported

    # --- checkpoints -------------------------------------------------------------------------------------------
    def _save(self, root: Path, step: int, policy: Any, critic: Critic, optimizers: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        staging = root / f".checkpoint-{step}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save_file(trainable_state(policy), str(staging / "policy.safetensors"))
        torch.save({"critic": critic.state_dict(), "optimizers": {k: o.state_dict() for k, o in optimizers.items()}},
                   staging / "ppo_state.pt")
        torch.save({"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()},
                   staging / "rng_state.pth")
        complete(staging, root, step, step * self.settings["prompts_per_step"], self.settings["keep_checkpoints"])

    def _load(self, path: Path, policy: Any, critic: Critic, optimizers: dict[str, Any]) -> int:
        from safetensors.torch import load_file

        restore(policy, load_file(str(path / "policy.safetensors")))
        state = torch.load(path / "ppo_state.pt", weights_only=False)
        critic.load_state_dict(state["critic"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        rng = torch.load(path / "rng_state.pth", weights_only=False)
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        if rng["numpy"] is not None:
            import numpy as np

            np.random.set_state(rng["numpy"])
        return int(json.loads((path / STATE_FILE).read_text())["step"])


def _numpy_state() -> Any:
    import numpy as np

    return np.random.get_state()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    configured = [configured] if isinstance(configured, int) else list(configured or [])
    return {i for i in (tokenizer.eos_token_id, *configured) if i is not None}


def _completion_mask(completion: torch.Tensor, eos: set[int]) -> torch.Tensor:
    """1 on each completion's tokens up to and including its first EOS, 0 after (generate pads finished rows)."""
    is_eos = torch.zeros_like(completion, dtype=torch.bool)
    for e in eos:
        is_eos |= completion == e
    after = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS tokens strictly before each position
    return (after == 0).long()


def _logps(model: Any, input_ids: torch.Tensor, attention: torch.Tensor, prompt_len: int,
           temperature: float) -> torch.Tensor:
    """Log-probabilities of the completion tokens (those after ``prompt_len``) under ``model``, in float32."""
    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, prompt_len - 1:-1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1)
