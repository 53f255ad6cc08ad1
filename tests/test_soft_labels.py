"""Soft labels from the teacher's reply to a shard: parsed, packed, kept for accepted samples only,
written beside the text shard and aligned with each sample's completion token for token."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select

from service.api import browse
from service.api.browse import SampleFilter
from service.database import jobs
from service.database.models import Sample
from service.errors import InvalidJob
from service.export.mixing import export
from service.export.options import ExportOptions
from service.schemas import JobIn
from service.standin.server import DEFAULT_MODEL
from service.standin.text import VOCAB_SIZE, token_id, token_pieces
from service.standin.tokenizer import save_standin_tokenizer
from service.storage import shards
from service.storage.soft_labels import PAD_ID, SoftLabels, from_openai, pack, to_arrow, unpack
from service.storage.stores import ShardStore
from tests.conftest import work_until_idle
from tests.kd import kd_loss

TOP_K = 5


def test_openai_logprobs_parse_pack_and_pad() -> None:
    content = [
        {
            "token": "token_id:17",
            "logprob": -0.25,
            "bytes": list(b"Hi"),
            "top_logprobs": [
                {"token": "token_id:4", "logprob": -2.0},
                {"token": "token_id:17", "logprob": -0.25},
            ],
        }
    ]
    labels = from_openai(content, top_k=3)
    assert labels.token_ids.tolist() == [17] and labels.tokens == ["Hi"]
    assert labels.top_ids.tolist() == [[17, 4, PAD_ID]]  # best first, padded to k
    assert labels.top_logprobs[0, :2].tolist() == [-0.25, -2.0] and np.isneginf(labels.top_logprobs[0, 2])
    back = unpack(pack(labels))
    assert back.token_ids.tolist() == [17] and back.tokens == ["Hi"]
    assert back.top_ids.tolist() == labels.top_ids.tolist()
    assert np.allclose(back.top_logprobs[0, :2], [-0.25, -2.0], atol=1e-3)
    table = to_arrow([(9, back)])
    assert table.column("top_ids").to_pylist() == [[17, 4, PAD_ID]]


def test_the_standin_answers_in_vllms_logprobs_shape(standin_teacher: str) -> None:
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Compute 6 * 7."}],
        "n": 2,
        "seed": 4,
        "max_tokens": 200,
        "logprobs": True,
        "top_logprobs": TOP_K,
        "return_tokens_as_token_ids": True,
        "return_token_ids": True,
    }
    first, again = (httpx.post(f"{standin_teacher}/chat/completions", json=body).json() for _ in range(2))
    assert first["choices"] == again["choices"]  # the same seed, the same labels
    for choice in first["choices"]:
        content = choice["logprobs"]["content"]
        text = choice["message"]["content"]
        assert len(content) == len(choice["token_ids"]) == len(token_pieces(text))
        assert "".join(bytes(e["bytes"]).decode() for e in content) == text.rstrip()
        for entry, sampled in zip(content, choice["token_ids"], strict=True):
            assert entry["token"] == f"token_id:{sampled}"
            logprobs = [t["logprob"] for t in entry["top_logprobs"]]
            assert len(logprobs) == TOP_K and logprobs == sorted(logprobs, reverse=True)
            assert all(lp <= 0 for lp in logprobs)
    assert sum(len(c["token_ids"]) for c in first["choices"]) == first["usage"]["completion_tokens"]


def _labelled(engine: Engine) -> dict[int, SoftLabels]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Sample.id, Sample.soft_labels).where(Sample.soft_labels.is_not(None))
        ).all()
    return {sample_id: unpack(blob) for sample_id, blob in rows}


PROMPTS = [{"id": f"p{i}", "prompt": f"Compute {i} * 3 + 2.", "reference": str(i * 3 + 2)} for i in range(8)]


def _soft_label_job(engine: Engine, teacher: str, tokenizer: str = DEFAULT_MODEL) -> str:
    body = {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
        "n": 4,
        "sampling": {"seed": 8, "max_tokens": 400},
        "soft_labels": {"top_k": TOP_K, "tokenizer": tokenizer},
        "verifiers": [{"name": "format"}, {"name": "math"}],
        "prompts": PROMPTS,
    }
    job_id = jobs.create_job(engine, JobIn.model_validate(body)).id
    work_until_idle(engine)
    return job_id


def test_accepted_samples_keep_their_labels_in_a_shard_beside_the_text(
    engine: Engine, standin_teacher: str, tmp_path: Path
) -> None:
    job_id = _soft_label_job(engine, standin_teacher)
    assert jobs.get_job(engine, job_id).spec["soft_labels"] == {"top_k": TOP_K, "tokenizer": DEFAULT_MODEL}
    waiting = _labelled(engine)
    with engine.connect() as conn:
        accepted = conn.execute(
            select(func.count()).where(Sample.job_id == job_id, Sample.accepted)
        ).scalar_one()
    assert 0 < accepted < 32 and len(waiting) == accepted  # rejected samples dropped theirs

    store = ShardStore(tmp_path)
    shards.flush_all(engine, store, shard_rows=100)
    listed = {s.kind: s for s in jobs.list_shards(engine, job_id, store)}
    assert set(listed) == {"accepted", "rejected", "softlabels"}
    assert listed["softlabels"].path.replace("softlabels", "accepted") == listed["accepted"].path
    assert _labelled(engine) == {}  # the shard holds them now
    text = {r["sample_id"]: r for r in pq.read_table(listed["accepted"].location).to_pylist()}
    labels = pq.read_table(listed["softlabels"].location).to_pylist()
    assert sorted(r["sample_id"] for r in labels) == sorted(text)
    for row in labels:
        sample = text[row["sample_id"]]
        pieces = token_pieces(sample["completion"])
        assert row["token_ids"] == [token_id(p) for p in pieces]  # the sampled tokens, in order
        assert "".join(row["tokens"]) == sample["completion"].rstrip()
        assert len(row["token_ids"]) == sample["completion_tokens"]
        top = np.array(row["top_logprobs"], dtype=np.float32).reshape(-1, row["top_k"])
        assert top.shape == (len(pieces), TOP_K) and (top <= 0).all()
        assert (np.diff(top, axis=1) <= 0).all()  # best first
    bytes_per_token = listed["softlabels"].num_bytes / sum(len(r["token_ids"]) for r in labels)
    assert bytes_per_token < 8 * TOP_K  # ids as int32 and log-probabilities as float16, compressed


def test_an_export_with_soft_labels_aligns_and_trains_a_student_for_a_step(
    engine: Engine, standin_teacher: str, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    templated = [f"{p['prompt']}" for p in PROMPTS]
    tokenizer = save_standin_tokenizer(tmp_path / "tokenizer", templated)
    job_id = _soft_label_job(engine, standin_teacher, tokenizer)
    store = ShardStore(tmp_path / "shards")
    shards.flush_all(engine, store, shard_rows=100)

    report = export(
        engine,
        store,
        ExportOptions(
            jobs=(job_id,), output=tmp_path / "out", keep_per_prompt=4, student_tokenizer=tokenizer
        ),
    )
    assert report.soft_labeled == report.reasoning > 0
    rows = pq.read_table(tmp_path / "out" / "soft_labels").to_pylist()
    assert len(rows) == report.reasoning
    text = {}
    for shard in jobs.list_shards(engine, job_id, store):
        if shard.kind == "accepted":
            text |= {r["sample_id"]: r for r in pq.read_table(shard.location).to_pylist()}
    for row in rows:
        sample = text[row["sample_id"]]
        mask = np.array(row["loss_mask"], dtype=bool)
        prompt_ids = [token_id(p) for p in token_pieces(sample["messages"][-1]["content"])]
        assert (
            row["input_ids"][: len(prompt_ids)] == prompt_ids
        )  # the prompt, as the student's tokenizer has it
        completion = np.array(row["input_ids"])[mask].tolist()
        assert completion == [token_id(p) for p in token_pieces(sample["completion"])]  # token for token
        top = np.array(row["teacher_top_logprobs"], dtype=np.float32).reshape(-1, row["top_k"])
        assert top.shape[0] == mask.sum() and (top <= 0).all() and (np.diff(top, axis=1) <= 0).all()

    torch.manual_seed(0)
    embed, head = torch.nn.Embedding(VOCAB_SIZE, 16), torch.nn.Linear(16, VOCAB_SIZE)
    optimizer = torch.optim.SGD([*embed.parameters(), *head.parameters()], lr=0.5)
    batch = rows[:4]
    loss = torch.stack([kd_loss(row, head, embed, temperature=2.0) for row in batch]).mean()
    loss.backward()
    optimizer.step()
    after = torch.stack([kd_loss(row, head, embed, temperature=2.0) for row in batch]).mean()
    assert torch.isfinite(loss) and loss.item() > 0
    assert after.item() < loss.item()  # one step towards the teacher


def test_a_student_tokenizer_that_differs_is_refused(
    engine: Engine, standin_teacher: str, tmp_path: Path
) -> None:
    teacher = save_standin_tokenizer(tmp_path / "teacher", [p["prompt"] for p in PROMPTS])
    other = save_standin_tokenizer(tmp_path / "other", ["An entirely different vocabulary."])
    same = save_standin_tokenizer(tmp_path / "same", [p["prompt"] for p in PROMPTS])  # another copy of it
    job_id = _soft_label_job(engine, standin_teacher, teacher)
    store = ShardStore(tmp_path / "shards")
    shards.flush_all(engine, store, shard_rows=100)
    with pytest.raises(InvalidJob, match="differs from the teacher tokenizer"):
        export(engine, store, ExportOptions(jobs=(job_id,), output=tmp_path / "a", student_tokenizer=other))
    assert not (tmp_path / "a").exists()  # refused before anything was written
    report = export(
        engine, store, ExportOptions(jobs=(job_id,), output=tmp_path / "b", student_tokenizer=same)
    )
    assert report.soft_labeled == report.reasoning


@pytest.mark.parametrize("top_k", [0, 101])
def test_top_k_out_of_range_is_refused(top_k: int) -> None:
    body = {"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}, "soft_labels": {"top_k": top_k}}
    with pytest.raises(ValueError, match="top_k"):
        JobIn.model_validate({**body, "prompts": [{"id": "p", "prompt": "x"}]})


def test_mean_entropy_is_over_the_top_k_with_pads_counted_as_nothing() -> None:
    sure = np.array([[0.0, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    even = np.log(np.full((1, 4), 0.25, dtype=np.float32))
    labels = SoftLabels(
        np.zeros(2, np.int32), ["a", "b"], np.zeros((2, 4), np.int32), np.vstack([sure, even])
    )
    assert labels.mean_entropy() == pytest.approx(np.log(4) / 2, rel=1e-5)


def test_samples_carry_the_teachers_entropy_to_browse_filter_and_export_by(
    engine: Engine, standin_teacher: str, tmp_path: Path
) -> None:
    job_id = _soft_label_job(engine, standin_teacher)
    samples = browse.list_samples(engine, job_id, limit=100).items
    entropies = sorted(s.entropy for s in samples if s.entropy is not None)
    assert len(entropies) == len(samples) == 32 and entropies[0] < entropies[-1]  # every sample has one
    middle = entropies[len(entropies) // 2]
    low = browse.list_samples(engine, job_id, SampleFilter(max_entropy=middle), limit=100).items
    assert low and all(s.entropy is not None and s.entropy <= middle for s in low)
    store = ShardStore(tmp_path / "shards")
    shards.flush_all(engine, store, shard_rows=100)
    out = tmp_path / "out"
    options = ExportOptions(
        jobs=(job_id,), output=out, reasoning_share=1.0, order="curriculum", difficulty="entropy"
    )
    export(engine, store, options)
    rows = [
        r for path in sorted((out / "data").glob("train-*.parquet")) for r in pq.read_table(path).to_pylist()
    ]
    bands = [round(r["entropy"], 1) for r in rows]
    assert rows and bands == sorted(bands)  # the surest first
    assert "ordered easy to hard by the teacher's entropy" in (out / "README.md").read_text()
