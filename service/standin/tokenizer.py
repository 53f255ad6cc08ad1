"""The stand-in teacher's tokenizer as a Hugging Face tokenizer folder, for soft-label exports in tests,
benches and demos: each piece (whitespace in front, ``standin_text.token_pieces``) gets the stand-in's
id for it, over the vocabulary of the texts given; the chat template joins plain turns. Needs
``tokenizers`` and ``transformers`` (the 'trl' extra)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from service.standin.text import PIECE_PATTERN, token_id, token_pieces

CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


def save_standin_tokenizer(folder: Path, texts: Iterable[str]) -> str:
    """Write the tokenizer folder; returns its path, the name jobs and exports use for it."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for text in texts:
        vocab |= {piece: token_id(piece) for piece in token_pieces(text)}
    model = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE_PATTERN), behavior="isolated")
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=model, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return str(folder)
