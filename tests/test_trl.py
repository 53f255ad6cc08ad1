"""Exported rows pass TRL's own data preparation: its chat-template step on a locally built tokenizer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.export.mixing import export
from service.export.options import ExportOptions
from service.storage.stores import ShardStore
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


def _prepared(dataset, tokenizer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The dataset as SFTTrainer prepares it for training (tokenized, with the labels its loss uses),
    on a tiny model built here."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    args = SFTConfig(
        output_dir=str(tmp_path / "student"), report_to=[], use_cpu=True, max_length=None,
        activation_checkpointing=False,  # set, so that TRL's deprecated gradient_checkpointing is not read
    )  # fmt: skip
    trainer = SFTTrainer(
        model=LlamaForCausalLM(config), args=args, train_dataset=dataset, processing_class=tokenizer
    )
    return trainer.train_dataset


@pytest.mark.parametrize("form", ["messages", "prompt-completion"])
def test_sft_trainer_takes_its_loss_where_the_export_form_says(
    form: str, engine: Engine, tmp_path: Path
) -> None:
    """messages: every token carries loss; prompt-completion: the assistant turn's tokens only."""
    import datasets

    job_id = _job_with_shards(engine, tmp_path / "shards")
    export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(
            jobs=(job_id,),
            output=tmp_path / "out",
            general=(_general(tmp_path / "g.jsonl", 5),),
            format=form,  # type: ignore[arg-type]
        ),
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert ("completion_only_loss=True" in card) == (form == "prompt-completion")
    dataset = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out" / "data"), split="train")
    assert ("messages" in dataset.column_names) == (form == "messages")
    turns = [row["messages"] if form == "messages" else row["prompt"] + row["completion"] for row in dataset]
    assert all(t[-1]["role"] == "assistant" and t[0]["role"] != "assistant" for t in turns)
    tokenizer = _tokenizer([m["content"] for t in turns for m in t])
    prepared = _prepared(dataset, tokenizer, tmp_path)
    assert len(prepared) == len(dataset)
    for turn, row in zip(turns, prepared, strict=True):
        ids, labels = row["input_ids"], row["labels"]
        learned = [i for i, label in zip(ids, labels, strict=True) if label != -100]
        if form == "messages":
            assert learned == ids
        else:
            answer = tokenizer(f"{turn[-1]['content']}</s>\n", add_special_tokens=False)["input_ids"]
            assert learned == answer and len(learned) < len(ids)
