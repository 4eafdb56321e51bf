"""The preflight's settings (``preflight.*`` on the command line): what to sample, and the thresholds of the checks."""

from __future__ import annotations

from typing import Annotated

from rlvr.interfaces import Count, NonNegative, Positive, Range

Share = Annotated[float, Range(ge=0, le=1)]


class PreflightSettings:
    """What ``preflight=true`` checks, and where each check passes.

    Args:
        enabled: run the checks instead of the job (``preflight=true`` on the command line sets it).
        sample: training prompts sampled with the configured model, ``num_generations`` completions each, for the
            behaviour checks: those of the timed training step, and more sampled beside it if this asks for more
            (on a CPU each costs about one more rollout; on a GPU a few more cost little). The model is also timed
            on one evaluation batch. 0 runs the data and memory checks only: no model weights are loaded (the
            tokenizer and the model's config are).
        seed: seed of the sampled prompts (the completions are sampled from the run's ``seed``).
        stream_rows: with ``data.streaming=true``, the training rows the data checks and the behaviour sample read:
            the stream's first ones (the timed step reads the stream as the run does); the rest is not read.
        max_truncated_prompts: share of prompts longer than the prompt budget (cut off, or unable to fit) allowed.
        max_refused_golds: share of rows whose gold answer was refused at load allowed.
        max_overlap: share of held-out questions that also appear in training allowed.
        min_gold_format: share of rows whose gold answer, written in the prompt's answer format, the scorer must
            read as correct (below it the format cannot carry this data's answers).
        audit_rows: rows the reward-hacking audit (:mod:`rlvr.audit`) is scored on; 0 skips it.
        max_hack_fraction: the audit's limit (see :class:`rlvr.audit.AuditSettings`).
        min_parse_rate: share of sampled completions that must state an answer the scorer can read.
        min_format_rate: share that must be well formatted (the prompt's markers, or its answer line); below it is a
            warning, since correctness rewards still read unformatted answers where the format allows it.
        max_truncated_completions: share of sampled completions cut at ``max_completion_length`` allowed.
        max_flat_groups: share of sampled groups whose rewards are all equal (nothing to learn from) allowed.
        memory_margin: share of the device's memory kept free (allocator fragmentation, buffers the estimate
            does not see); the estimate must fit in the rest.
        device_memory_gib: memory of one device to compare with; null: the instance type's GPU when
            ``instance_type`` is set, else this machine's (the GPU's, or the RAM available now).
        launch: an accelerate config (``launch/fsdp.yaml``, ``launch/zero3.yaml``...) whose distribution the memory
            estimate assumes; null: how this process was started (one process, or the launcher's settings).
        num_processes: processes (devices) of the launch; null: the launch config's, or this launcher's.
        instance_type: the machine the cost is priced on; null: the Terraform default
            (``instance_type`` and ``spot`` in ``infrastructure/aws/single_gpu/variables.tf``).
        spot: price spot (true) or on-demand (false); null: the Terraform default.
        prices: the dated price table (relative to the working directory).
        max_hours: the longest run allowed (estimated); null: no limit.
        max_cost_usd: the most a run may cost (estimated); null: no limit.
    """

    def __init__(
        self,
        enabled: bool = False,
        sample: Count = 2,
        seed: int = 0,
        stream_rows: Annotated[int, Range(ge=1)] = 1000,
        max_truncated_prompts: Share = 0.0,
        max_refused_golds: Share = 0.05,
        max_overlap: Share = 0.0,
        min_gold_format: Share = 0.95,
        audit_rows: Count = 32,
        max_hack_fraction: Share = 0.1,
        min_parse_rate: Share = 0.5,
        min_format_rate: Share = 0.5,
        max_truncated_completions: Share = 0.5,
        max_flat_groups: Share = 0.75,
        memory_margin: Annotated[float, Range(ge=0, lt=1)] = 0.1,
        device_memory_gib: Positive | None = None,
        launch: str | None = None,
        num_processes: Annotated[int, Range(ge=1)] | None = None,
        instance_type: str | None = None,
        spot: bool | None = None,
        prices: str = "infrastructure/aws/prices.yaml",
        max_hours: NonNegative | None = None,
        max_cost_usd: NonNegative | None = None,
    ):
        self.enabled, self.sample, self.seed, self.stream_rows = enabled, sample, seed, stream_rows
        self.max_truncated_prompts, self.max_refused_golds, self.max_overlap = (
            max_truncated_prompts, max_refused_golds, max_overlap)
        self.min_gold_format, self.audit_rows, self.max_hack_fraction = min_gold_format, audit_rows, max_hack_fraction
        self.min_parse_rate, self.min_format_rate = min_parse_rate, min_format_rate
        self.max_truncated_completions, self.max_flat_groups = max_truncated_completions, max_flat_groups
        self.memory_margin, self.device_memory_gib = memory_margin, device_memory_gib
        self.launch, self.num_processes = launch, num_processes
        self.instance_type, self.spot, self.prices = instance_type, spot, prices
        self.max_hours, self.max_cost_usd = max_hours, max_cost_usd
