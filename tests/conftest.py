"""Shared fixtures: the real config composed and shrunk, and a tiny random causal LM built in code.

The tiny model has a character-level tokenizer and a ChatML template like SmolLM2's, so every code path
(chat template, left padding, generation, GRPO, LoRA, saving) runs for real in a fraction of a second.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The tests that start several processes (two ranks under torchrun or accelerate, Ray, parallel Hydra jobs) run one
# after another on one pytest-xdist worker: accelerate's ranks meet on one fixed port, and each such test fills the
# machine's cores by itself (pyproject.toml runs the suite with ``-n auto --dist loadgroup``).
MULTIPROCESS = pytest.mark.xdist_group("multiprocess")
# Data files committed with the tests (see tests/fixtures/README.md): the suite reads nothing outside the checkout.
FIXTURES = REPO / "tests" / "fixtures"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def pytest_configure(config):
    """Under pytest-xdist each worker (and every process a test starts) gets its share of the cores, so workers do
    not fight over them; OMP_NUM_THREADS set by hand wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def char_tokenizer():
    """A character-level fast tokenizer with a ChatML template like SmolLM2's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|im_start|>", unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama_config(tokenizer, **kw):
    """The configuration of a 2-layer Llama over ``tokenizer`` (``kw``: further settings, e.g. labels)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True, **kw,
    )


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    """Save a 2-layer Llama with a character tokenizer to ``path`` (about 100k parameters)."""
    import torch
    from transformers import LlamaForCausalLM

    fast = char_tokenizer()
    torch.manual_seed(seed)
    LlamaForCausalLM(tiny_llama_config(fast)).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def build_tiny_scorers(model_dir: Path, path: Path, heads: int = 2) -> tuple[Path, Path]:
    """A process reward model and a reward-model ensemble of ``heads`` heads made from the tiny model (untrained
    heads), saved with their tokenizer as train=prm and train=reward_model save them: ``(prm_dir, rm_dir)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr.model.reward_head import process_reward_model_from, reward_model_from

    policy, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    out = []
    for name, model in (("prm", process_reward_model_from(policy, "\n", seed=1)),
                        ("reward_model", reward_model_from(policy, seed=1, heads=heads))):
        model.save_pretrained(path / name)
        tokenizer.save_pretrained(path / name)
        out.append(path / name)
    return out[0], out[1]


@pytest.fixture(scope="session")
def tiny_scorer_dirs(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    return build_tiny_scorers(tiny_model_dir, tmp_path_factory.mktemp("tiny-scorers"))


def build_group(cfg, group: str):
    """One component of a composed config, validated and built the way the pipeline builds it."""
    from rlvr.config import build, validate, with_defaults

    cfg = with_defaults(cfg)
    validate(cfg)
    return build(cfg[group])


def compose(overrides: list[str] | None = None, config_name: str = "config"):
    from rlvr.config import load_config

    return load_config(overrides or [], config_name=config_name)


def tiny_overrides(model_dir: Path, run_dir: Path) -> list[str]:
    """The real default config, shrunk: tiny model, few rows, few tokens, no console noise."""
    return [
        f"model.name_or_path={model_dir}",
        "model.dtype=float32",
        "data.train_size=16",
        "data.test_size=4",
        "train.max_steps=2",
        "train.per_device_train_batch_size=4",
        "train.num_generations=4",
        "train.max_completion_length=8",
        "train.learning_rate=1e-2",
        "eval.batch_size=4",
        "observers=none",
        f"output_dir={run_dir}",
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault-injection suite's figures (``tests/faults/ledger.py``), when any of its runs took place."""
    from tests.faults.ledger import LEDGER

    if LEDGER.trials:
        terminalreporter.section("fault injection")
        for line in LEDGER.table():
            terminalreporter.write_line(line)
