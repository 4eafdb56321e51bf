"""Memory per device, estimated from shapes and dtypes without allocating anything.

The model is built on the meta device from its config (no weights are read), so parameter counts, the linear
layers LoRA would wrap and the attention shapes are the model's own. What a step holds, per device:

- **weights**: every parameter in the model's dtype; a 4-bit base stores its linear layers in half a byte per
  weight plus one fp32 scale per 64 (bitsandbytes NF4 without double quantisation), 8-bit in one byte; a LoRA
  adapter is kept in fp32 (PEFT upcasts adapters of a 16-bit base);
- **gradients**: one per trainable parameter, in its dtype;
- **optimizer**: AdamW keeps two states per trainable parameter in its dtype (an 8-bit optimizer one byte
  each, SGD none); DeepSpeed keeps fp32 states and an fp32 master copy of 16-bit weights;
- **activations** of one micro-batch's forward pass kept for the backward pass: per token and layer the two
  norms' inputs and outputs, q, k, v before and after the rotary embedding, the attention output, and the MLP's
  gate, its activation, up projection and their product (``7h + 3kv + 4i`` values, for hidden size ``h``, key/value
  width ``kv`` and MLP width ``i``); with gradient checkpointing only each layer's input plus one layer
  recomputed. With a shared prompt (``train.shared_prefix``) a group's prompt runs once and its KV cache, repeated
  over the group, is kept. Logits: TRL's GRPO and RLOO project through a fused head in tiles (4096 positions x
  32768 vocabulary entries, and two fp32 temporaries of it); a plain loss keeps the logits, an fp32 copy and its
  log-softmax;
- **KV cache** of the rollout (the sequences decoded together, prompt plus completion) or of an evaluation batch,
  whichever is larger, and the rollout's fp32 logits;
- **reference** model (KL term: ``beta > 0`` without LoRA, DPO/KTO's reference model) and **critic** (PPO:
  a full copy with its own gradients and optimizer);
- **runtime**: on CPU the memory the process already holds (interpreter and libraries, measured), on a GPU the
  CUDA context (0.5 GiB, assumed).

The launch divides what it shards by the number of processes: DDP shards nothing and adds gradient buckets (one
more copy of the gradients); FSDP (full sharding) and ZeRO-3 shard weights, gradients and optimizer state and
hold two layers gathered at a time; ZeRO-2 shards gradients and optimizer state, ZeRO-1 the optimizer state.
Under FSDP and ZeRO-3 TRL gathers the whole model for generation, so the rollout holds the full weights.

Rollout and training do not overlap: the peak is what persists (weights, optimizer state, reference, critic,
runtime) plus the larger of the training pass (gradients, activations, buckets) and the rollout (KV cache,
logits, gathered weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rlvr.errors import ConfigError

GIB = 1024**3
CUDA_CONTEXT = GIB // 2
# TRL's fused LM head projects tiles of this many positions x vocabulary entries at a time
# (trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE, trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE)
FUSED_TILE = (4096, 32768)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Launch:
    """How one job is spread over devices: ``single`` (one process), ``ddp``, ``fsdp`` or ``deepspeed`` (with its
    ZeRO ``zero_stage``), over ``processes`` devices; ``source`` says where this was read."""

    kind: Literal["single", "ddp", "fsdp", "deepspeed"] = "single"
    processes: int = 1
    zero_stage: int = 0
    source: str = "one process"

    @property
    def label(self) -> str:
        if self.kind == "single":
            return "one process"
        name = f"ZeRO-{self.zero_stage}" if self.kind == "deepspeed" else self.kind.upper()
        return f"{name} x {self.processes}"


def launch_from(path: str | None, processes: int | None, env: dict[str, str] | None = None) -> Launch:
    """The launch of an accelerate config file (``launch/fsdp.yaml``), else of this process's launcher (the
    environment ``accelerate launch`` and ``torchrun`` set); ``processes`` overrides the count."""
    env = dict(os.environ if env is None else env)
    if path is not None:
        import yaml

        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"preflight.launch={path}: no such file (an accelerate config such as launch/fsdp.yaml, "
                              "relative to the working directory).")
        spec = yaml.safe_load(file.read_text()) or {}
        kind = {"MULTI_GPU": "ddp", "MULTI_CPU": "ddp", "FSDP": "fsdp", "DEEPSPEED": "deepspeed"}.get(
            str(spec.get("distributed_type", "NO")), "single")
        stage = int((spec.get("deepspeed_config") or {}).get("zero_stage", 0)) if kind == "deepspeed" else 0
        count = processes or int(spec.get("num_processes", 1))
        return Launch(kind if count > 1 or kind != "ddp" else "single", count, stage, path)
    count = processes or int(env.get("WORLD_SIZE", "1"))
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return Launch("fsdp", count, 0, "this launcher")
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return Launch("deepspeed", count, int(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "0")), "this launcher")
    if count > 1:
        return Launch("ddp", count, 0, "this launcher" if processes is None else "preflight.num_processes")
    return Launch()


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a model: parameter count (tied weights once), the dimensions of its
    decoder, and every linear layer ``(name, in, out)`` (the ones LoRA and quantisation act on)."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    kv_width: int
    vocab: int
    context: int | None
    linears: tuple[tuple[str, int, int], ...]
    output_layer: str = "lm_head"

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (its linear layers; norms are negligible)."""
        names = [n for n, _, _ in self.linears if n != self.output_layer]
        return sum(i * o for n, i, o in self.linears if n in names) // max(self.layers, 1)


def shape_of(config: Any) -> ModelShape:
    """The shape of the causal LM ``config`` (a ``transformers`` config) describes, built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    text = config.get_text_config()
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    linears = tuple((name, m.in_features, m.out_features) for name, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear))
    output = model.get_output_embeddings()
    output_name = next((n for n, m in model.named_modules() if m is output), "lm_head")
    return ModelShape(
        params=sum(p.numel() for p in model.parameters()), layers=text.num_hidden_layers, hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", 4 * text.hidden_size), kv_width=kv_heads * head_dim,
        vocab=text.vocab_size, context=getattr(text, "max_position_embeddings", None), linears=linears,
        output_layer=output_name)


@dataclass(frozen=True)
class Workload:
    """What one training step asks of the model.

    ``dtype``: the weights' dtype name; ``lora_r``/``lora_targets``: the adapter (None: full fine-tuning);
    ``quant_bits``: 4 or 8 for a quantised base; ``optimizer``: the TrainingArguments ``optim`` name;
    ``micro_batch`` sequences of ``prompt_tokens + completion_tokens`` per forward/backward; ``shared_prompts``:
    the distinct prompts of a micro-batch when each runs once for its group (``train.shared_prefix``), else None;
    ``logit_tokens``: positions of each sequence projected onto the vocabulary, by ``fused_head`` (TRL's tiled
    head: no full logits kept) or not; ``rollout_rows`` sequences of ``rollout_tokens`` decoded together;
    ``eval_rows`` of ``eval_tokens`` in an evaluation batch; ``reference`` / ``critic`` models.
    """

    dtype: str
    micro_batch: int
    prompt_tokens: int
    completion_tokens: int
    logit_tokens: int
    fused_head: bool = False
    shared_prompts: int | None = None
    rollout_rows: int = 0
    rollout_tokens: int = 0
    eval_rows: int = 0
    eval_tokens: int = 0
    lora_r: int | None = None
    lora_targets: str | tuple[str, ...] = "all-linear"
    quant_bits: int | None = None
    optimizer: str = "adamw_torch"
    gradient_checkpointing: bool = False
    reference: bool = False
    critic: bool = False

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def tokens(self) -> int:
        """Tokens that run through the layers in one micro-batch (a shared prompt once per group)."""
        prompts = self.micro_batch if self.shared_prompts is None else self.shared_prompts
        return prompts * self.prompt_tokens + self.micro_batch * self.completion_tokens


@dataclass
class MemoryEstimate:
    """Bytes per device of each part (see the module docstring), the peak, the phase that makes it, and notes."""

    parts: dict[str, int]
    peak: int
    phase: str
    launch: Launch
    trainable: int
    notes: list[str] = field(default_factory=list)

    def gib(self) -> dict[str, float]:
        return {k: round(v / GIB, 3) for k, v in self.parts.items() if v}

    def describe(self) -> str:
        shown = ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.parts.items() if v >= 0.005 * GIB)
        return f"{self.peak / GIB:.2f} GiB per device ({shown})"


def _targets(shape: ModelShape, targets: str | tuple[str, ...]) -> list[tuple[str, int, int]]:
    if targets == "all-linear":  # PEFT: every linear layer but the output layer
        return [t for t in shape.linears if t[0] != shape.output_layer]
    wanted = {targets} if isinstance(targets, str) else set(targets)
    return [t for t in shape.linears if t[0].rsplit(".", 1)[-1] in wanted]


def trainable_params(shape: ModelShape, work: Workload) -> int:
    """Parameters the optimizer updates: all of them, or the LoRA adapter's ``r * (in + out)`` per target."""
    if work.lora_r is None:
        return shape.params
    return sum(work.lora_r * (i + o) for _, i, o in _targets(shape, work.lora_targets))


def weight_bytes(shape: ModelShape, work: Workload) -> int:
    """The whole model's weights (the base, quantised or not, plus a LoRA adapter in fp32)."""
    adapter = trainable_params(shape, work) * 4 if work.lora_r is not None else 0
    if work.quant_bits is None:
        return shape.params * work.dtype_bytes + adapter
    quantised = sum(i * o for n, i, o in shape.linears if n != shape.output_layer)
    per_weight = 0.5 + 4 / 64 if work.quant_bits == 4 else 1 + 4 / 4096
    return int(quantised * per_weight) + (shape.params - quantised) * work.dtype_bytes + adapter


def optimizer_bytes(trainable: int, param_bytes: int, optim: str, deepspeed: bool) -> int:
    """The optimizer's state for ``trainable`` parameters of ``param_bytes`` each (see the module docstring)."""
    name = optim.lower()
    states = 0 if "sgd" in name or "adafactor" in name else 1 if "lion" in name else 2
    if deepspeed:  # fp32 states, and an fp32 master copy of 16-bit weights
        return trainable * (states * 4 + (4 if param_bytes < 4 else 0))
    return trainable * states * (1 if "8bit" in name else param_bytes)


def activation_bytes(shape: ModelShape, work: Workload) -> int:
    """One micro-batch's activations kept for the backward pass, and its logits (see the module docstring)."""
    per_layer = 7 * shape.hidden + 3 * shape.kv_width + 4 * shape.intermediate
    if work.gradient_checkpointing:
        kept = shape.layers * shape.hidden + per_layer
    else:
        kept = shape.layers * per_layer
    projected = work.micro_batch * work.logit_tokens
    if work.fused_head:  # one tile of TRL's head at a time, and two fp32 temporaries of it (off a GPU's kernel)
        logits = min(projected, FUSED_TILE[0]) * min(shape.vocab, FUSED_TILE[1]) * (work.dtype_bytes + 8)
    else:  # the logits, their fp32 copy in the loss, its log-softmax kept for the gradient
        logits = projected * shape.vocab * (work.dtype_bytes + 8)
    shared_kv = 0
    if work.shared_prompts is not None:  # each prompt's KV cache repeated over its group, kept for the backward
        shared_kv = kv_bytes(shape, work.micro_batch, work.prompt_tokens, work.dtype_bytes)
    return work.tokens * kept * work.dtype_bytes + logits + shared_kv


def kv_bytes(shape: ModelShape, rows: int, tokens: int, dtype_bytes: int) -> int:
    return rows * tokens * shape.layers * 2 * shape.kv_width * dtype_bytes


def estimate(shape: ModelShape, work: Workload, launch: Launch = Launch(), runtime: int | None = None
             ) -> MemoryEstimate:
    """Bytes per device for ``work`` on ``shape`` under ``launch``; ``runtime``: memory the process holds before
    the model (None: the CUDA context)."""
    n, notes = launch.processes, []
    trainable = trainable_params(shape, work)
    param_bytes = 4 if work.lora_r is not None else work.dtype_bytes
    weights = weight_bytes(shape, work)
    grads = trainable * param_bytes
    optimizer = optimizer_bytes(trainable, param_bytes, work.optimizer, launch.kind == "deepspeed")
    reference = shape.params * work.dtype_bytes if work.reference else 0
    critic = 0
    if work.critic:  # a full copy of the policy, trained: weights, gradients, AdamW
        critic = shape.params * work.dtype_bytes * 2 + optimizer_bytes(shape.params, work.dtype_bytes,
                                                                        work.optimizer, False)
    sharded_weights = launch.kind == "fsdp" or (launch.kind == "deepspeed" and launch.zero_stage >= 3)
    gathered = 0
    if sharded_weights and n > 1:
        weights, reference, grads, optimizer = weights // n, reference // n, grads // n, optimizer // n
        gathered = 2 * shape.layer_params * work.dtype_bytes * 2  # two layers gathered, with their gradients
        notes.append("generation gathers the whole model on every device (TRL under FSDP/ZeRO-3)")
    elif launch.kind == "deepspeed" and n > 1:
        optimizer //= n
        if launch.zero_stage >= 2:
            grads //= n
    buckets = grads if launch.kind == "ddp" else 0
    activations = activation_bytes(shape, work)
    rollout_kv = kv_bytes(shape, work.rollout_rows, work.rollout_tokens, work.dtype_bytes)
    eval_kv = kv_bytes(shape, work.eval_rows, work.eval_tokens, work.dtype_bytes)
    rollout_logits = work.rollout_rows * shape.vocab * 4 * 3
    full_weights = weight_bytes(shape, work)
    generation_weights = full_weights - weights if sharded_weights and n > 1 and work.rollout_rows else 0
    runtime = CUDA_CONTEXT if runtime is None else runtime
    training = grads + activations + buckets + gathered
    rollout = max(rollout_kv + rollout_logits + generation_weights, eval_kv)
    parts = {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations,
             "kv_cache": max(rollout_kv, eval_kv), "reference": reference, "critic": critic,
             "ddp_buckets": buckets, "gathered": gathered + generation_weights, "runtime": runtime}
    if work.critic:
        notes.append("PPO runs in one process: the critic is not sharded")
    peak = weights + optimizer + reference + critic + runtime + max(training, rollout)
    return MemoryEstimate(parts, peak, "training pass" if training >= rollout else "rollout", launch, trainable,
                          notes)


def suggestions(shape: ModelShape, work: Workload, launch: Launch, runtime: int | None, budget: int,
                gpus: int) -> list[tuple[str, MemoryEstimate]]:
    """Changes that make ``work`` fit in ``budget`` bytes per device: each alone that fits, else the first
    combination (applied in order) that does; ``gpus``: devices a sharded launch may use."""
    options: list[tuple[str, Workload, Launch]] = []
    if not work.gradient_checkpointing:
        options.append(("model.gradient_checkpointing=true", replace(work, gradient_checkpointing=True), launch))
    if work.micro_batch >= 2:
        options.append(("halve train.per_device_train_batch_size and double train.gradient_accumulation_steps",
                        replace(work, micro_batch=work.micro_batch // 2), launch))
    if work.dtype == "float32":
        options.append(("model.dtype=bfloat16 (a GPU)", replace(work, dtype="bfloat16"), launch))
    if work.lora_r is None:
        options.append(("model.lora.enabled=true", replace(work, lora_r=16), launch))
    if "8bit" not in work.optimizer and work.lora_r is None:
        options.append(("train.optim=adamw_8bit (bitsandbytes, CUDA)", replace(work, optimizer="adamw_8bit"), launch))
    if gpus > 1 and (launch.kind != "deepspeed" or launch.zero_stage < 3):
        options.append((f"accelerate launch --config_file launch/zero3.yaml --num_processes {gpus}", work,
                        Launch("deepspeed", gpus, 3, "suggested")))
    if work.quant_bits is None:
        options.append(("model.quant.load_in_4bit=true model.lora.enabled=true (CUDA)",
                        replace(work, quant_bits=4, lora_r=work.lora_r or 16), launch))
    alone = [(name, estimate(shape, w, lw, runtime)) for name, w, lw in options]
    fitting = [(name, e) for name, e in alone if e.peak <= budget]
    if fitting:
        return fitting
    names, current, current_launch = [], work, launch
    for name, w, lw in options:
        current = _combine(current, w)
        current_launch = lw if lw.kind != launch.kind else current_launch
        names.append(name)
        combined = estimate(shape, current, current_launch, runtime)
        if combined.peak <= budget:
            return [(" + ".join(names), combined)]
    return []


def _combine(a: Workload, b: Workload) -> Workload:
    """``a`` with each change ``b`` makes to the defaults of a workload (more memory-saving of the two)."""
    return replace(a, gradient_checkpointing=a.gradient_checkpointing or b.gradient_checkpointing,
                   micro_batch=min(a.micro_batch, b.micro_batch),
                   dtype=b.dtype if DTYPE_BYTES[b.dtype] < DTYPE_BYTES[a.dtype] else a.dtype,
                   lora_r=a.lora_r or b.lora_r,
                   optimizer=b.optimizer if "8bit" in b.optimizer else a.optimizer,
                   quant_bits=a.quant_bits or b.quant_bits)
