"""Soft labels: the teacher's top-k log-probabilities at every token it generated, for logit distillation.

One sample's labels travel from the teacher's reply (OpenAI ``logprobs`` shape, or vLLM's engine
output) through the database (``pack``/``unpack``: a compact blob, only for accepted samples) to a
Parquet shard beside the text shard (``to_arrow``). Per token: the sampled token's id and text, and
the k most likely ids with their log-probabilities, best first; a token with fewer than k candidates
is padded with id -1 and log-probability -inf.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

TOKEN_ID_PREFIX = "token_id:"  # vLLM's ``return_tokens_as_token_ids`` spelling of a token
PAD_ID = -1
_HEADER = struct.Struct("<II")

SCHEMA = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("top_k", pa.int16()),
        ("token_ids", pa.list_(pa.int32())),
        ("tokens", pa.list_(pa.string())),
        ("top_ids", pa.list_(pa.int32())),  # num_tokens x top_k, row-major
        ("top_logprobs", pa.list_(pa.float16())),  # the same layout
    ]
)


@dataclass(frozen=True)
class SoftLabels:
    token_ids: np.ndarray  # int32 [T]
    tokens: list[str]
    top_ids: np.ndarray  # int32 [T, k]
    top_logprobs: np.ndarray  # float32 [T, k]

    @property
    def top_k(self) -> int:
        return int(self.top_ids.shape[1])

    def __len__(self) -> int:
        return len(self.tokens)

    def mean_entropy(self) -> float:
        """The teacher's mean token entropy in nats over its top-k candidates: how unsure it was of
        this sample. A lower bound of the whole distribution's, whose tail past k is not returned."""
        if not len(self):
            return 0.0
        logprobs = self.top_logprobs.astype(np.float64)
        with np.errstate(invalid="ignore"):  # -inf pads: 0 * -inf, counted as 0
            terms = np.where(np.isfinite(logprobs), -np.exp(logprobs) * logprobs, 0.0)
        return float(terms.sum(axis=1).mean())


def _token_id(token: str) -> int:
    return int(token[len(TOKEN_ID_PREFIX) :]) if token.startswith(TOKEN_ID_PREFIX) else PAD_ID


def _text(entry: dict[str, Any]) -> str:
    """The token's text: from its bytes where given (a token spelled ``token_id:N`` has no other)."""
    raw = entry.get("bytes")
    if raw is not None:
        return bytes(raw).decode("utf-8", "replace")
    token = str(entry.get("token", ""))
    return "" if token.startswith(TOKEN_ID_PREFIX) else token


def _ranked(candidates: list[list[tuple[int, float]]], top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token, its (id, log-probability) candidates best first, cut or padded to ``top_k``."""
    top_ids = np.full((len(candidates), top_k), PAD_ID, dtype=np.int32)
    top_logprobs = np.full((len(candidates), top_k), -np.inf, dtype=np.float32)
    for position, pairs in enumerate(candidates):
        ranked = sorted(pairs, key=lambda pair: -pair[1])[:top_k]
        top_ids[position, : len(ranked)] = [token for token, _ in ranked]
        top_logprobs[position, : len(ranked)] = [logprob for _, logprob in ranked]
    return top_ids, top_logprobs


def from_openai(content: list[dict[str, Any]], top_k: int, token_ids: list[int] | None = None) -> SoftLabels:
    """From a chat choice's ``logprobs.content``. Ids come from ``token_ids`` (vLLM's
    ``return_token_ids``) or from tokens spelled ``token_id:N`` (``return_tokens_as_token_ids``)."""
    count = len(content)
    tops = [entry.get("top_logprobs") or () for entry in content]
    if all(len(top) == top_k for top in tops):  # as vLLM answers: exactly k per token, so in one go
        flat = [candidate for top in tops for candidate in top]
        top_ids = np.fromiter((_token_id(c["token"]) for c in flat), np.int32, len(flat)).reshape(
            count, top_k
        )
        top_logprobs = np.fromiter((c["logprob"] for c in flat), np.float32, len(flat)).reshape(count, top_k)
        order = np.argsort(-top_logprobs, axis=1, kind="stable")
        top_ids = np.take_along_axis(top_ids, order, axis=1)
        top_logprobs = np.take_along_axis(top_logprobs, order, axis=1)
    else:
        top_ids, top_logprobs = _ranked(
            [[(_token_id(str(t["token"])), float(t["logprob"])) for t in top] for top in tops], top_k
        )
    sampled = token_ids if token_ids is not None and len(token_ids) == count else None
    ids = sampled if sampled is not None else [_token_id(str(e["token"])) for e in content]
    return SoftLabels(np.asarray(ids, dtype=np.int32), [_text(e) for e in content], top_ids, top_logprobs)


def from_engine(token_ids: list[int], logprobs: list[dict[int, Any]], top_k: int) -> SoftLabels:
    """From a vLLM ``CompletionOutput``: per position a dict id -> Logprob(logprob, rank, decoded_token)
    holding the top-k and the sampled token."""
    top_ids, top_logprobs = _ranked(
        [[(token, lp.logprob) for token, lp in candidates.items()] for candidates in logprobs], top_k
    )
    tokens = [
        candidates[sampled].decoded_token or "" if sampled in candidates else ""
        for sampled, candidates in zip(token_ids, logprobs, strict=True)
    ]
    return SoftLabels(np.asarray(token_ids, dtype=np.int32), tokens, top_ids, top_logprobs)


def pack(labels: SoftLabels) -> bytes:
    """A compressed blob for the database, where accepted samples wait for their shard."""
    body = b"".join(
        [
            _HEADER.pack(len(labels), labels.top_k),
            labels.token_ids.astype("<i4").tobytes(),
            labels.top_ids.astype("<i4").tobytes(),
            labels.top_logprobs.astype("<f2").tobytes(),
            json.dumps(labels.tokens, ensure_ascii=False).encode(),
        ]
    )
    return zlib.compress(body, 1)


def unpack(blob: bytes) -> SoftLabels:
    body = zlib.decompress(blob)
    count, top_k = _HEADER.unpack_from(body)
    at = _HEADER.size
    token_ids = np.frombuffer(body, "<i4", count, at)
    at += 4 * count
    top_ids = np.frombuffer(body, "<i4", count * top_k, at).reshape(count, top_k)
    at += 4 * count * top_k
    top_logprobs = np.frombuffer(body, "<f2", count * top_k, at).reshape(count, top_k).astype(np.float32)
    at += 2 * count * top_k
    return SoftLabels(
        token_ids.astype(np.int32), json.loads(body[at:]), top_ids.astype(np.int32), top_logprobs
    )


def to_arrow(rows: Iterable[tuple[int, SoftLabels]]) -> pa.Table:
    """Samples' labels as a soft-label shard (one row per sample)."""
    items = list(rows)
    return pa.table(
        {
            "sample_id": pa.array([sample_id for sample_id, _ in items], pa.int64()),
            "top_k": pa.array([labels.top_k for _, labels in items], pa.int16()),
            "token_ids": pa.array([labels.token_ids for _, labels in items], pa.list_(pa.int32())),
            "tokens": pa.array([labels.tokens for _, labels in items], pa.list_(pa.string())),
            "top_ids": pa.array([labels.top_ids.ravel() for _, labels in items], pa.list_(pa.int32())),
            "top_logprobs": pa.array(
                [labels.top_logprobs.ravel().astype(np.float16) for _, labels in items],
                pa.list_(pa.float16()),
            ),
        },
        schema=SCHEMA,
    )
