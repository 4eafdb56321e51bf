"""How far the rollout engine's log-probabilities are from TRL's training pass, per token, in each precision.

    python bench/logprob_gap.py                  # the embedded SmolLM2-135M on CPU
    python bench/logprob_gap.py --device cuda    # on a GPU (bench/gpu.sh runs it)

For each precision (fp32; bf16; an nf4 base with bf16 compute, QLoRA's setting) the engine samples 16 completions
of each of 4 chain_sum prompts (temperature 0.7, up to ``--tokens`` tokens) and returns each token's
log-probability; then TRL's GRPOTrainer scores the same tokens with its own training pass
(``_get_per_token_logps_and_entropies``, the fused LM head GRPOTrainer adds, which accumulates the LM head's
product in fp32), and the model's own LM head scores them too (one uncached forward, logits in the model's dtype,
as ``generate`` and the engine compute them). The table gives the largest and the mean absolute gap in nats per
token over every sampled token, for ``--seeds`` seeds, for each pair: the engine against TRL's pass (what a
rollout/training mismatch would be); ``model.generate`` (TRL's own rollouts, on their own samples) against TRL's
pass, the baseline; and how much of the engine's gap is the LM head's rounding (own head against TRL) or cached
decoding (engine against own head). GRPO's importance ratio is exp(training pass - rollout): a gap of g
nats moves it by a factor up to exp(g).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from grpo_step import rows  # noqa: E402  (the step benchmark's prompts)


def load(path: str, precision: str, device: str):
    """The model in ``precision`` on ``device``, with TRL's fused LM head (temperature 0.7) as GRPOTrainer adds it."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from trl.trainer.utils import add_fused_lm_head

    from rlvr.model.hf import keep_cpu_layout_trainable

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    if precision == "nf4":
        nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, quantization_config=nf4,
                                                     device_map={"": device})
        if device == "cpu":
            keep_cpu_layout_trainable(model)  # as HFModel.load does
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    if precision == "nf4":  # as QLoRA trains it (and TRL takes it): a LoRA adapter on top, starting as the identity
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    return model.eval()


def trl_pass(model, tok, device: str):
    """TRL's training-pass scoring, ``(prompt_ids, completion_ids) -> per-token log-probabilities``."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from trl.trainer.utils import pad

    from rlvr.train.trl_bridge import checkpointing

    args = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, use_cpu=device == "cpu", report_to=[], temperature=0.7,
                      bf16=False, **checkpointing(False))
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=args,
                          train_dataset=Dataset.from_list([{"prompt": "hi"}] * 8), processing_class=tok)

    def score(prompt_ids, completion_ids):
        left = lambda xs, v: pad([torch.tensor(x) for x in xs], padding_value=v, padding_side="left")  # noqa: E731
        right = lambda xs, v: pad([torch.tensor(x) for x in xs], padding_value=v, padding_side="right")  # noqa: E731
        prompts, comps = left(prompt_ids, 0), right(completion_ids, 0)
        mask = torch.cat([left([[1] * len(p) for p in prompt_ids], 0), right([[1] * len(c) for c in completion_ids],
                                                                             0)], 1)
        with torch.no_grad():
            logps, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(
                trainer, model, torch.cat([prompts, comps], 1).to(device), mask.to(device), comps.size(1))
        return [logps[i, :len(c)].float().cpu() for i, c in enumerate(completion_ids)]

    return score


def plain_pass(model, device: str):
    """The log-probabilities from the model's own LM head (logits in the model's dtype, as ``generate`` and the
    engine get them), one uncached forward over prompt and completion."""
    import torch

    def score(prompt_ids, completion_ids):
        out = []
        with torch.no_grad():
            for p, c in zip(prompt_ids, completion_ids):
                logits = model(torch.tensor([p + c], device=device)).logits[0, len(p) - 1:-1].float()
                out.append(torch.log_softmax(logits / 0.7, -1).gather(1, torch.tensor(c, device=device)[:, None])
                           .squeeze(1).cpu())
        return out

    return score


def generate_rollout(model, tok, prompt_ids, tokens: int, device: str):
    """What TRL's own rollouts are: ``model.generate`` (cached decoding, logits in the model's dtype), with each
    sampled token's log-probability from its logits; completions end at (and include) EOS."""
    import torch

    width = max(map(len, prompt_ids))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompt_ids], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=0.7, top_k=0, top_p=1.0,
                             max_new_tokens=tokens, output_logits=True, return_dict_in_generate=True,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    logps = torch.stack([torch.log_softmax(x.float() / 0.7, -1) for x in out.logits], 1)  # rows x steps x vocab
    completions, logprobs = [], []
    for row, seq in enumerate(out.sequences[:, width:].tolist()):
        end = seq.index(tok.eos_token_id) + 1 if tok.eos_token_id in seq else len(seq)
        completions.append(seq[:end])
        logprobs.append(logps[row, torch.arange(end), torch.tensor(seq[:end])].cpu())
    return completions, logprobs


def gaps(path: str, precision: str, device: str, seeds: int, tokens: int) -> dict[str, tuple[float, float]]:
    import torch
    from transformers import AutoTokenizer

    from rlvr.train.rollout import RolloutEngine, Sampling

    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = load(path, precision, device)
    score, plain = trl_pass(model, tok, device), plain_pass(model, device)
    prompts = [tok.apply_chat_template(r["prompt"], add_generation_prompt=True) for r in rows(4)]
    prompt_ids = [list(p if isinstance(p, list) else p["input_ids"]) for p in prompts for _ in range(16)]
    sampling = Sampling(max_new_tokens=tokens, stop_token_ids=(tok.eos_token_id,), temperature=0.7)
    found: dict[str, list] = {"engine - TRL": [], "generate - TRL": [], "own head - TRL": [],
                              "engine - own head": []}
    for seed in range(seeds):
        torch.manual_seed(seed)
        rollout = RolloutEngine().generate(model, prompt_ids, sampling, tok.pad_token_id)
        engine = [torch.tensor(lp) for lp in rollout.logprobs]
        trl, own = score(prompt_ids, rollout.completion_ids), plain(prompt_ids, rollout.completion_ids)
        torch.manual_seed(seed)
        generated, generate_logps = generate_rollout(model, tok, prompt_ids, tokens, device)
        for name, (a, b) in {"engine - TRL": (engine, trl), "own head - TRL": (own, trl),
                             "engine - own head": (engine, own),
                             "generate - TRL": (generate_logps, score(prompt_ids, generated))}.items():
            found[name] += [(x - y).abs() for x, y in zip(a, b)]
    return {name: (torch.cat(g).max().item(), torch.cat(g).mean().item(), torch.cat(g).numel())
            for name, g in found.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded://smollm2-135m-instruct")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", action="append", choices=["fp32", "bf16", "nf4"],
                   help="repeatable; default: all three")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--tokens", type=int, default=32)
    args = p.parse_args()
    from rlvr.model import embedded

    path = embedded.resolve(args.model) if embedded.is_embedded(args.model) else args.model
    print("| precision | device | tokens | compared | max gap (nats) | mean gap (nats) |")
    print("|---|---|---|---|---|---|")
    for precision in args.precision or ["fp32", "bf16", "nf4"]:
        for name, (worst, mean, n) in gaps(path, precision, args.device, args.seeds, args.tokens).items():
            print(f"| {precision} | {args.device} | {n} | {name} | {worst:.2e} | {mean:.2e} |", flush=True)


if __name__ == "__main__":
    main()
