"""Exported rows pass TRL's own data preparation: its chat-template step on a locally built tokenizer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.export import ExportOptions, export
from service.storage import ShardStore
from tests.test_export import _general, _job_with_shards

trl_data = pytest.importorskip("trl.data_utils", reason="the trl extra is not installed")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _tokenizer(texts: list[str]):  # type: ignore[no-untyped-def]
    """A word-level tokenizer with a chat template, built here (nothing is fetched from a hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text)})
    vocab = {"[UNK]": 0, "<pad>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", pad_token="<pad>", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def test_trl_chat_template_step_accepts_every_exported_row(engine: Engine, tmp_path: Path) -> None:
    import datasets

    job_id = _job_with_shards(engine, tmp_path / "shards")
    export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(jobs=(job_id,), output=tmp_path / "out", general=(_general(tmp_path / "g.jsonl", 50),)),
    )
    dataset = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out" / "data"), split="train")
    tokenizer = _tokenizer([m["content"] for row in dataset for m in row["messages"]])
    for row in dataset:
        example = {"messages": row["messages"]}
        assert trl_data.is_conversational(example)
        text = trl_data.apply_chat_template(example, tokenizer)["text"]
        assert text.count("<|assistant|>") == 1 and text.endswith("</s>\n")
        if row["source"] == "reasoning":
            assert "<think>\n" in text and "\n</think>\n\n" in text
        assert len(tokenizer(text)["input_ids"]) > len(row["messages"])
