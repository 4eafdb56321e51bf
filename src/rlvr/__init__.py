"""rlvr: reinforcement learning from verifiable rewards, configured with Hydra.

Entry points: ``python run_pipeline.py`` (training), ``python -m rlvr.benchmark`` (models x tasks).
"""

import logging

__version__ = "0.1.0"


def _optional_kernel_notice(record: logging.LogRecord) -> bool:
    """False for bitsandbytes' notice that it could not download its optional faster 4-bit CPU kernel from the Hub
    (tried at import, by peft too, on CPUs with AVX512-BF16): offline or untrusted it keeps its own kernel, so the
    notice, printed before every run's first line, says nothing a user must act on. Every other record passes."""
    return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_optional_kernel_notice)
