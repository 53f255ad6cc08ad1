"""The stand-in's ``logprobs`` for chat choices, shaped as vLLM returns them (soft-label tests)."""

from __future__ import annotations

import math
from typing import Any

from service.standin.text import VOCAB_SIZE, seeded_rng, token_id, token_pieces


def chat_logprobs(text: str, body: dict[str, Any], index: int) -> dict[str, Any]:
    """vLLM's ``logprobs`` for a chat choice: per token its log-probability and the ``top_logprobs``
    most likely tokens, best first, deterministic for the request's seed. The sampled token is the
    likeliest most of the time, as with a confident teacher; ``return_tokens_as_token_ids`` spells
    tokens ``token_id:N`` and ``return_token_ids`` adds the choice's ``token_ids``."""
    top_k = int(body.get("top_logprobs") or 0)
    as_ids = bool(body.get("return_tokens_as_token_ids"))
    rng = seeded_rng("logprobs", body.get("seed"), index, text)
    pieces = token_pieces(text)

    def entry(token: int, piece: str, logprob: float) -> dict[str, Any]:
        spelled = f"token_id:{token}" if as_ids else piece
        return {"token": spelled, "logprob": logprob, "bytes": list(piece.encode())}

    content = []
    for piece in pieces:
        sampled = token_id(piece)
        # A proper distribution: k likeliest weights, the first dominant, and the rest of the vocabulary.
        weights = sorted((rng.expovariate(1.0) for _ in range(max(top_k, 1))), reverse=True)
        weights[0] += 3.0
        total = sum(weights) + rng.expovariate(2.0)
        logprobs = [math.log(w / total) for w in weights]
        rank = 0 if rng.random() < 0.8 else rng.randrange(max(top_k, 1))
        others = [3 + rng.randrange(VOCAB_SIZE - 3) for _ in range(top_k)]
        top = [
            entry(sampled if r == rank else others[r], piece if r == rank else "", logprobs[r])
            for r in range(top_k)
        ]
        content.append({**entry(sampled, piece, logprobs[rank]), "top_logprobs": top})
    extra: dict[str, Any] = {"logprobs": {"content": content}}
    if body.get("return_token_ids"):
        extra["token_ids"] = [token_id(piece) for piece in pieces]
    return extra
