"""The rollout engine samples what ``model.generate`` samples and scores it as the training pass does; the
shared-prefix training pass equals TRL's. All on the tiny model, on CPU."""

from __future__ import annotations

import tempfile

import pytest
import torch

from rlvr.train.rollout import RolloutEngine, Sampling

PROMPTS = ["hello there", "what is 2+3?", "x"]  # different lengths: left padding is exercised


def load(model_dir, dtype=torch.float32, quantization_config=None):
    """A fresh copy of the tiny model (not a deepcopy: TRL patches a model's forward in place), with TRL's fused
    LM head added as GRPOTrainer adds it (temperature 0.7), so TRL's scoring path can run on it."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, quantization_config=quantization_config)
    if quantization_config is not None:
        from rlvr.model.hf import keep_cpu_layout_trainable

        keep_cpu_layout_trainable(model)  # as HFModel.load does on CPU
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    return model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoTokenizer

    return load(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")


@pytest.fixture(scope="module")
def trainer(tiny):
    """A GRPOTrainer on the tiny model (with the shared-prefix pass), for TRL's own scoring path."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.train.shared_prefix import shared_prefix
    from rlvr.train.trl_bridge import checkpointing

    model, tok = tiny
    args = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, use_cpu=True, report_to=[], temperature=0.7, bf16=False,
                      **checkpointing(False))
    return shared_prefix(GRPOTrainer)(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                                      args=args, train_dataset=Dataset.from_list([{"prompt": "hi"}] * 8),
                                      processing_class=tok)


def grouped(tok, group=4):
    return [tok(p)["input_ids"] for p in PROMPTS for _ in range(group)]


def sampling(tok, **kw):
    return Sampling(**{"max_new_tokens": 12, "stop_token_ids": (tok.eos_token_id,), **kw})


def trl_logps(trainer, model, prompt_ids, completion_ids):
    """TRL's training-pass log-probabilities of the completions (left-padded prompts, right-padded completions)."""
    from trl.trainer.utils import pad

    prompts = pad([torch.tensor(p) for p in prompt_ids], padding_value=0, padding_side="left")
    pmask = pad([torch.ones(len(p), dtype=torch.long) for p in prompt_ids], padding_value=0, padding_side="left")
    comps = pad([torch.tensor(c) for c in completion_ids], padding_value=0, padding_side="right")
    cmask = pad([torch.ones(len(c), dtype=torch.long) for c in completion_ids], padding_value=0,
                padding_side="right")
    base = type(trainer).__mro__[1]  # TRL's own pass, not the shared-prefix one
    with torch.no_grad():
        logps, _, _ = base._get_per_token_logps_and_entropies(
            trainer, model, torch.cat([prompts, comps], 1), torch.cat([pmask, cmask], 1), comps.size(1))
    return [logps[i, :len(c)] for i, c in enumerate(completion_ids)]


@pytest.mark.parametrize("static", [False, True], ids=["growing cache", "static cache"])
def test_logprobs_equal_the_training_pass_in_fp32(tiny, trainer, static):
    model, tok = tiny
    prompt_ids = grouped(tok)
    torch.manual_seed(0)
    rollout = RolloutEngine(static_cache=static).generate(model, prompt_ids, sampling(tok, temperature=0.7),
                                                          tok.pad_token_id)
    reference = trl_logps(trainer, model, prompt_ids, rollout.completion_ids)
    gap = max((torch.tensor(lp) - ref).abs().max().item() for lp, ref in zip(rollout.logprobs, reference))
    assert gap < 1e-5
    assert rollout.prefill_tokens == sum(len(tok(p)["input_ids"]) for p in PROMPTS)  # one prefill per group


def test_logprobs_in_bf16_are_within_a_stated_tolerance(tiny, trainer, tiny_model_dir):
    """bf16 rounds differently in cached decoding and in one full forward: within 0.01 nats per token at most and
    0.001 on average on this model (measured 2026-12-01 over three seeds: at most 1.6e-3, on average 2e-4)."""
    model, tok = load(tiny_model_dir, torch.bfloat16), tiny[1]
    prompt_ids = grouped(tok)
    torch.manual_seed(0)
    rollout = RolloutEngine().generate(model, prompt_ids, sampling(tok, temperature=0.7), tok.pad_token_id)
    reference = trl_logps(trainer, model, prompt_ids, rollout.completion_ids)
    gaps = torch.cat([(torch.tensor(lp) - ref.float()).abs() for lp, ref in zip(rollout.logprobs, reference)])
    assert gaps.max().item() < 0.01 and gaps.mean().item() < 1e-3


@pytest.mark.parametrize(("compute", "max_gap", "mean_gap"), [(torch.float32, 1e-5, 1e-6),
                                                                (torch.bfloat16, 0.02, 2e-3)], ids=["fp32", "bf16"])
def test_logprobs_on_a_4bit_model_are_within_the_tolerance_of_its_compute_dtype(tiny, trainer, tiny_model_dir,
                                                                                compute, max_gap, mean_gap):
    """An nf4 model (QLoRA's base) with LoRA adapters: the engine and the training pass de-quantise the same 4-bit
    codes to the same weights before every product, so quantization adds no gap of its own; what is left is the
    rounding of the compute dtype. Measured 2026-12-04 over seeds 0-2: fp32 compute at most 9.5e-7 per token
    (1.9e-7 on average), as an unquantized fp32 model; bf16 compute at most 8.4e-3 (1.0e-3 on average), and the
    same unquantized bf16 model with the same adapters at most 9.6e-3 (9.8e-4 on average): the bf16 bounds are
    twice the larger of the two, i.e. bf16's rounding (adapters that matter make it larger than the plain bf16
    test's), not quantization's."""
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)
    model = get_peft_model(load(tiny_model_dir, compute, nf4), LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                                                          target_modules="all-linear"))
    assert type(model.base_model.model.model.layers[0].mlp.up_proj.base_layer).__name__ == "Linear4bit"
    tok, prompt_ids = tiny[1], grouped(tiny[1])
    torch.manual_seed(0)
    rollout = RolloutEngine().generate(model, prompt_ids, sampling(tok, temperature=0.7), tok.pad_token_id)
    reference = trl_logps(trainer, model, prompt_ids, rollout.completion_ids)
    gaps = torch.cat([(torch.tensor(lp) - ref.float()).abs() for lp, ref in zip(rollout.logprobs, reference)])
    assert gaps.max().item() < max_gap and gaps.mean().item() < mean_gap


def test_stop_tokens_eos_and_max_length_are_honoured(tiny):
    model, tok = tiny
    stops = (tok.eos_token_id, tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("e"))
    torch.manual_seed(1)
    rollout = RolloutEngine().generate(model, grouped(tok, 16), sampling(tok, stop_token_ids=stops),
                                       tok.pad_token_id)
    ended = [c for c in rollout.completion_ids if c[-1] in stops]
    assert ended and len(ended) < len(rollout.completion_ids)  # both kinds occur
    for c in rollout.completion_ids:
        assert not set(c[:-1]) & set(stops)  # nothing after a stop token
        assert len(c) == 12 or c[-1] in stops  # only a stop token ends a completion early
    assert rollout.decode_tokens < len(rollout.completion_ids) * 11  # finished rows left the batch


def test_min_new_tokens_pins_the_length(tiny):
    model, tok = tiny
    stops = (tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("e"), tok.eos_token_id)
    rollout = RolloutEngine().generate(model, grouped(tok, 8), sampling(tok, stop_token_ids=stops,
                                                                        min_new_tokens=12), tok.pad_token_id)
    assert {len(c) for c in rollout.completion_ids} == {12}


def full_logits(model, prompt, completion):
    with torch.no_grad():
        return model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()


@pytest.mark.parametrize("kw", [{"top_k": 3}, {"top_p": 0.3}, {"min_p": 0.5}], ids=["top_k", "top_p", "min_p"])
def test_sampled_tokens_lie_inside_the_truncation(tiny, kw):
    """Every sampled token is among those top-k / top-p / min-p keeps, read from a full forward pass."""
    model, tok = tiny
    torch.manual_seed(2)
    prompt_ids = grouped(tok, 8)
    rollout = RolloutEngine().generate(model, prompt_ids, sampling(tok, temperature=1.3, **kw), tok.pad_token_id)
    for prompt, completion in zip(prompt_ids, rollout.completion_ids):
        probs = torch.softmax(full_logits(model, prompt, completion) / 1.3, dim=-1)
        for pos, token in enumerate(completion):
            p = probs[pos]
            if "top_k" in kw:
                assert p[token] >= p.topk(kw["top_k"]).values[-1]
            elif "top_p" in kw:  # the mass of the tokens strictly more likely must be below top_p
                assert p[p > p[token]].sum() < kw["top_p"]
            else:
                assert p[token] >= kw["min_p"] * p.max()


def test_top_k_one_is_greedy_decoding(tiny):
    model, tok = tiny
    prompt = tok(PROMPTS[1])["input_ids"]
    rollout = RolloutEngine().generate(model, [prompt] * 2, sampling(tok, top_k=1), tok.pad_token_id)
    greedy = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
    assert rollout.completion_ids == [greedy, greedy]


def _first_tokens(samples: list[list[int]], positions: int) -> list[tuple[int, ...]]:
    return [tuple(s[:positions]) for s in samples]


def _p_value(a: list, b: list) -> float:
    """Two-sample chi-square test of equal distributions (categories seen fewer than 10 times pooled)."""
    from collections import Counter

    from scipy.stats import chi2_contingency

    ca, cb = Counter(a), Counter(b)
    keys = sorted(set(ca) | set(cb), key=lambda k: -(ca[k] + cb[k]))
    big = [k for k in keys if ca[k] + cb[k] >= 10]
    rest = [k for k in keys if ca[k] + cb[k] < 10]
    table = [[ca[k] for k in big] + [sum(ca[k] for k in rest)], [cb[k] for k in big] + [sum(cb[k] for k in rest)]]
    if table[0][-1] + table[1][-1] == 0:
        table = [row[:-1] for row in table]
    return chi2_contingency(table).pvalue


def test_token_distribution_matches_generate(tiny, tiny_model_dir):
    """2,000 two-token samples from the engine and from ``model.generate`` (same settings, different seeds):
    the distribution of the first token, and of the pair, cannot be told apart (p > 0.001); the same test does
    tell apart a different temperature, so it has the power to see a difference. The tiny model's logits are
    scaled up (its final norm x6) so that its distribution is peaked, as a trained model's is."""
    model, tok = load(tiny_model_dir), tiny[1]
    with torch.no_grad():
        model.model.norm.weight.mul_(6)
    prompt = tok(PROMPTS[0])["input_ids"]
    n, kw = 2000, {"temperature": 0.6, "top_p": 0.95, "top_k": 30}

    def generate(seed, temperature):
        torch.manual_seed(seed)
        out = model.generate(torch.tensor([prompt] * n), do_sample=True, max_new_tokens=2, min_new_tokens=2,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                             **{**kw, "temperature": temperature})
        return out[:, len(prompt):].tolist()

    torch.manual_seed(3)
    ours = RolloutEngine().generate(model, [prompt] * n, sampling(tok, max_new_tokens=2, min_new_tokens=2, **kw),
                                    tok.pad_token_id).completion_ids
    theirs, hotter = generate(4, 0.6), generate(5, 0.9)
    for positions in (1, 2):
        assert _p_value(_first_tokens(ours, positions), _first_tokens(theirs, positions)) > 1e-3
    assert _p_value(_first_tokens(ours, 1), _first_tokens(hotter, 1)) < 1e-6


def test_repetition_penalty_as_generate_applies_it(tiny):
    """With top_k=1 sampling is greedy, so the engine and ``generate`` must pick the same penalised tokens."""
    model, tok = tiny
    prompt = tok(PROMPTS[0])["input_ids"]
    rollout = RolloutEngine().generate(model, [prompt], sampling(tok, top_k=1, repetition_penalty=5.0),
                                       tok.pad_token_id)
    greedy = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12, repetition_penalty=5.0,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
    assert rollout.completion_ids == [greedy]


def test_generation_settings_the_engine_lacks_are_refused_by_name():
    from transformers import GenerationConfig

    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="no_repeat_ngram_size=3"):
        Sampling.from_generation_config(GenerationConfig(do_sample=True, max_new_tokens=4, no_repeat_ngram_size=3))
    s = Sampling.from_generation_config(GenerationConfig(do_sample=True, max_new_tokens=4, eos_token_id=[2, 7, 2],
                                                         top_k=0, temperature=0.5, min_new_tokens=2))
    assert (s.stop_token_ids, s.top_k, s.temperature, s.min_new_tokens) == ((2, 7), None, 0.5, 2)


def test_static_cache_is_allocated_once_and_reused(tiny):
    model, tok = tiny
    engine = RolloutEngine(static_cache=True)
    engine.generate(model, grouped(tok), sampling(tok), tok.pad_token_id)
    first = engine._cache
    engine.generate(model, grouped(tok), sampling(tok), tok.pad_token_id)
    assert engine._cache is first and first is not None


def test_compiled_decoding_samples_what_eager_decoding_samples(tiny):
    """The GPU path (a static cache, the decoding step under ``torch.compile``), run on CPU: the same tokens and
    log-probabilities as eager decoding from the same seed, also on a second rollout (the compiled step and the
    cache reused). On CPU it is slower than eager; it is meant for CUDA graphs."""
    model, tok = tiny
    compiled, eager = RolloutEngine(compile=True), RolloutEngine(static_cache=True)
    for seed in (0, 1):
        outs = []
        for engine in (compiled, eager):
            torch.manual_seed(seed)
            outs.append(engine.generate(model, grouped(tok), sampling(tok, temperature=0.7), tok.pad_token_id))
        assert outs[0].completion_ids == outs[1].completion_ids
        assert max(abs(a - b) for x, y in zip(outs[0].logprobs, outs[1].logprobs) for a, b in zip(x, y)) < 1e-5


def test_compiled_decoding_keeps_one_shape(tiny):
    """Each new input shape of the compiled step is a new compilation (on a GPU, new CUDA graphs): every token of
    a rollout, and the next rollout of the same padded width, reuse the first one. (Rows that finish change the
    batch when half of it is done; here no completion stops.) A mask one token longer at each step recompiled at
    every token: a 50-step GPU run did not finish its first minutes (2026-12-04)."""
    import torch._dynamo

    model, tok = tiny
    engine = RolloutEngine(compile=True)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for seed in (0, 1):
            torch.manual_seed(seed)
            out = engine.generate(model, grouped(tok), sampling(tok, stop_token_ids=(), temperature=0.7),
                                  tok.pad_token_id)
            assert {len(c) for c in out.completion_ids} == {12}


def test_lora_and_gradient_checkpointing(tiny, trainer, tiny_model_dir):
    """A LoRA policy training with gradient checkpointing: the engine samples with the adapters applied (its
    log-probabilities equal the training pass's with them), leaves checkpointing on, and the shared-prefix
    pass falls back to TRL's under checkpointing (which drops the KV cache)."""
    from peft import LoraConfig, get_peft_model

    from rlvr.train.trl_bridge import is_checkpointing

    base, tok = load(tiny_model_dir), tiny[1]
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # adapters that change the output
    model.base_model.model.gradient_checkpointing_enable()
    model.train()
    prompt_ids = grouped(tok)
    torch.manual_seed(0)
    rollout = RolloutEngine().generate(model, prompt_ids, sampling(tok, temperature=0.7), tok.pad_token_id)
    assert is_checkpointing(model.base_model.model)
    reference = trl_logps(trainer, model, prompt_ids, rollout.completion_ids)
    gap = max((torch.tensor(lp) - ref).abs().max().item() for lp, ref in zip(rollout.logprobs, reference))
    assert gap < 1e-5
    with model.disable_adapter():
        plain = trl_logps(trainer, model, prompt_ids, rollout.completion_ids)
    assert max((a - b).abs().max().item() for a, b in zip(plain, reference)) > 1e-2  # the adapters mattered


def padded_batch():
    """Two groups of three, the second prompt left-padded, two completions ended early."""
    g = torch.Generator().manual_seed(0)
    prompt_len, completion_len = 7, 5
    ids = torch.cat([torch.randint(5, 90, (2, prompt_len), generator=g).repeat_interleave(3, 0),
                     torch.randint(5, 90, (6, completion_len), generator=g)], 1)
    mask = torch.ones_like(ids)
    ids[3:, :2], mask[3:, :2] = 0, 0
    mask[0, -2:], mask[4, -1:] = 0, 0
    return ids, mask, completion_len


def _scored(trainer, fn, ids, mask, completion_len):
    trainer.model.zero_grad()
    logps, entropy, _ = fn(trainer.model, ids, mask, completion_len, compute_entropy=True)
    (logps * mask[:, -completion_len:]).sum().backward()
    grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    keep = mask[:, -completion_len:].bool()
    return logps.detach()[keep], entropy.detach()[keep], grads


def test_shared_prefix_pass_equals_trls(trainer, monkeypatch):
    from rlvr.train import shared_prefix as module

    ids, mask, n = padded_batch()
    theirs = _scored(trainer, type(trainer).__mro__[1]._get_per_token_logps_and_entropies.__get__(trainer),
                     ids, mask, n)
    calls = []
    monkeypatch.setattr(module, "score", lambda *a: calls.append(1) or _score(*a))
    ours = _scored(trainer, trainer._get_per_token_logps_and_entropies, ids, mask, n)
    assert calls  # the shared path ran
    for a, b in zip(ours, theirs):
        assert (a - b).abs().max().item() < 1e-5
    assert theirs[2].abs().max() > 1e-2  # gradients that are not all zero were compared


_score = __import__("rlvr.train.shared_prefix", fromlist=["score"]).score


@pytest.mark.parametrize("sharded_by", ["is_fsdp_enabled", "is_deepspeed_enabled"])
def test_sharded_weights_are_scored_by_trls_pass(trainer, monkeypatch, sharded_by):
    """FSDP or DeepSpeed, one process included: a LoRA model under FSDP2 on one process failed in the backward pass
    of the shared-prefix pass (the prompt pass's weights were resharded before it), so TRL's pass scores them."""
    from rlvr.train import shared_prefix as module

    monkeypatch.setattr(trainer, sharded_by, True)
    calls = []
    monkeypatch.setattr(module, "score", lambda *a: calls.append(1) or _score(*a))
    ids, mask, n = padded_batch()
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, n)
    assert not calls and logps.shape == (ids.size(0), n)


def _loss_inputs(advantages):
    """``padded_batch`` as TRL's loss reads it: two groups of three, with the given advantages."""
    ids, mask, n = padded_batch()
    return {"prompt_ids": ids[:, :-n], "prompt_mask": mask[:, :-n], "completion_ids": ids[:, -n:],
            "completion_mask": mask[:, -n:], "advantages": torch.tensor(advantages),
            "num_items_in_batch": mask[:, -n:].sum()}


def _loss_and_grads(trainer, inputs):
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.detach(), [p.grad for p in trainer.model.parameters() if p.requires_grad]


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo", "cispo"])
def test_rows_of_a_flat_group_are_not_run_and_change_nothing(trainer, monkeypatch, loss_type):
    """The second group is flat (advantage 0 on each row): the pass runs the first group only, and the loss and
    every gradient are those of the pass that runs every row (which equals TRL's: the test above)."""
    from rlvr.train import shared_prefix as module

    monkeypatch.setattr(trainer, "loss_type", loss_type)
    monkeypatch.setattr(trainer, "current_gradient_accumulation_steps", 1, raising=False)
    metrics = trainer._metrics["train" if trainer.model.training else "eval"]
    metrics.clear()
    inputs = _loss_inputs([1.2, -0.3, -0.9, 0.0, 0.0, 0.0])
    rows = []
    monkeypatch.setattr(module, "score", lambda model, ids, *a: rows.append(ids.size(0)) or _score(model, ids, *a))
    ours = _loss_and_grads(trainer, inputs)
    assert rows == [3] and metrics["train_pass/scored_fraction"] == [0.5]
    rows.clear()
    with monkeypatch.context() as m:
        m.setattr(trainer, "_rows_with_gradient", lambda inputs: None)
        every_row = _loss_and_grads(trainer, inputs)
    assert rows == [6]
    assert abs(ours[0] - every_row[0]) < 1e-6 and every_row[0] != 0
    for a, b in zip(ours[1], every_row[1]):
        assert (a - b).abs().max().item() < 1e-6
    assert max(g.abs().max().item() for g in every_row[1]) > 1e-3  # gradients that are not all zero were compared


def test_a_step_with_every_group_flat_runs_nothing_and_gives_zero_gradients(trainer, monkeypatch):
    """Every weight still gets a gradient, zero, as when every row runs: the optimizer steps as it would (AdamW's
    moments move on)."""
    from rlvr.train import shared_prefix as module

    monkeypatch.setattr(trainer, "current_gradient_accumulation_steps", 1, raising=False)
    calls = []
    monkeypatch.setattr(module, "score", lambda *a: calls.append(1) or _score(*a))
    loss, grads = _loss_and_grads(trainer, _loss_inputs([0.0] * 6))
    assert not calls and loss.item() == 0.0
    assert grads and all(g is not None and not g.any() for g in grads)


@pytest.mark.parametrize("setting", [{"beta": 0.04}, {"top_entropy_quantile": 0.5}, {"_entropy_bonus_enabled": True}])
def test_every_row_runs_where_a_flat_row_still_counts(trainer, monkeypatch, setting):
    """A KL term, an entropy mask or an entropy bonus reads every row: nothing is skipped."""
    for name, value in setting.items():
        monkeypatch.setattr(trainer, name, value, raising=False)
    assert trainer._rows_with_gradient(_loss_inputs([1.0, 0.0, -1.0, 0.0, 0.0, 0.0])) is None
    monkeypatch.undo()
    assert trainer._rows_with_gradient(_loss_inputs([1.0, 0.0, -1.0, 0.0, 0.0, 0.0])).tolist() == \
        [True, False, True, False, False, False]


def test_shared_prefix_needs_a_repeated_prompt(tiny):
    from rlvr.train.shared_prefix import score

    ids, mask, n = padded_batch()
    rows = torch.tensor([0, 3])  # one completion per prompt: nothing to share
    assert score(tiny[0], ids[rows], mask[rows], n) is None


# --- the settings in GRPOLoop, and the engine in a pipeline run ---------------------------------------------------


def test_vllm_is_a_config_path_checked_before_loading(tmp_path, monkeypatch):
    """vLLM cannot be installed here: the setting maps onto TRL's vLLM fields, and without vLLM it is one line."""
    import importlib.util

    from rlvr.errors import ConfigError
    from rlvr.train import GRPOLoop

    with pytest.raises(ConfigError, match=r'needs vLLM, which is not installed: pip install "rlvr\[vllm\]"'):
        GRPOLoop(rollout="vllm")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    loop = GRPOLoop(rollout="vllm", vllm_mode="server", extra={"vllm_server_base_url": "http://gpu-1:8000"})
    args = loop.config(str(tmp_path), seed=0, bf16=False)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, "server", "http://gpu-1:8000")
    assert GRPOLoop().config(str(tmp_path), seed=0, bf16=False).use_vllm is False


@pytest.mark.parametrize(("kw", "message"), [
    ({"rollout": "trl", "rollout_compile": True}, "train.rollout_compile compiles our rollout engine"),
    ({"extra": {"use_vllm": True}}, "set train.rollout=vllm instead"),
    ({"extra": {"generation_kwargs": {"no_repeat_ngram_size": 2}}},
     "train.extra.generation_kwargs: the engine does not implement generation setting no_repeat_ngram_size=2"),
])
def test_rollout_settings_it_cannot_honour_are_refused(kw, message):
    from rlvr.errors import ConfigError
    from rlvr.train import GRPOLoop

    with pytest.raises(ConfigError, match=message):
        GRPOLoop(**kw)


@pytest.mark.parametrize("rollout", ["engine", "trl"])
def test_pipeline_rolls_out_with_the_chosen_backend(tiny_model_dir, tmp_path, rollout):
    from rlvr.orchestration import build_pipeline
    from tests.conftest import compose, read_jsonl, tiny_overrides

    overrides = tiny_overrides(tiny_model_dir, tmp_path) + [f"train.rollout={rollout}", "observers=default",
                                                          "eval.baseline=false", "train.max_steps=2"]
    build_pipeline(compose(overrides)).run(tmp_path)
    steps = [m for m in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in m.get("metrics", m)]
    metrics = [m.get("metrics", m) for m in steps]
    assert len(metrics) == 2
    if rollout == "engine":
        assert all(m["rollout/seconds"] > 0 and 0 < m["rollout/decoded_fraction"] <= 1 for m in metrics)
    else:
        assert not any("rollout/seconds" in m for m in metrics)


def test_pipeline_trains_in_bf16_through_the_engine(tiny_model_dir, tmp_path):
    """``model.dtype=bfloat16`` end to end on CPU: the engine samples from the bf16 policy, TRL trains it in bf16
    (``bf16`` follows the model's dtype) and the saved weights are bf16 and changed."""
    from safetensors.torch import load_file

    from rlvr.orchestration import build_pipeline
    from tests.conftest import compose, read_jsonl, tiny_overrides
    from tests.unit.orchestration.test_orchestrator import SIGNAL

    overrides = [o for o in tiny_overrides(tiny_model_dir, tmp_path) if o != "model.dtype=float32"]
    results = build_pipeline(compose(overrides + ["model.dtype=bfloat16", "observers=none", SIGNAL,
                                                  "+observers.jsonl={_target_: rlvr.observers.JsonlObserver}"])
                             ).run(tmp_path)
    assert results["run"]["status"] == "success" and results["train"]["global_step"] == 2
    steps = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert len(steps) == 2 and all(r["rollout/seconds"] > 0 for r in steps)
    assert any(r["reward_std"] > 0 for r in steps)  # a group with different rewards: a gradient
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert {t.dtype for t in after.values()} == {torch.bfloat16}
    assert any(not after[k].equal(v.to(torch.bfloat16)) for k, v in before.items())


def test_same_seed_same_tokens_as_generate(tiny_model_dir, tiny):
    """The engine draws for finished rows too (and throws those draws away), as ``generate`` does, so from the same
    seed it samples exactly the tokens ``generate`` samples although its batch shrinks: a run keeps the trajectory
    it would have with TRL's generation."""
    model, tok = load(tiny_model_dir), tiny[1]
    with torch.no_grad():
        model.model.norm.weight.mul_(3)  # peaked enough that completions end at different lengths
    prompt = tok(PROMPTS[1])["input_ids"]
    stops = (tok.eos_token_id, tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("e"))
    for seed in range(3):
        torch.manual_seed(seed)
        ours = RolloutEngine().generate(model, [prompt] * 16, sampling(tok, stop_token_ids=stops, temperature=0.9),
                                        tok.pad_token_id)
        torch.manual_seed(seed)
        out = model.generate(torch.tensor([prompt] * 16), attention_mask=torch.ones(16, len(prompt), dtype=torch.long),
                             do_sample=True, max_new_tokens=12, temperature=0.9, top_k=0, top_p=1.0,
                             pad_token_id=tok.pad_token_id, eos_token_id=list(stops))
        theirs = []
        for row in out[:, len(prompt):].tolist():
            end = next((i for i, t in enumerate(row) if t in stops), None)
            theirs.append(row if end is None else row[:end + 1])
        assert len({len(c) for c in theirs}) > 1  # rows did finish at different steps
        assert ours.completion_ids == theirs
