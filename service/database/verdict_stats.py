"""What a job's verdicts say and cost: acceptance per verifier, the rejection reasons, each verifier's
time and, for a judge, its tokens; and the job's tokens by model (its teacher's and its judges')."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, select

from service.database.models import VerdictCount, VerifierCost
from service.responses import ModelUsage, VerifierStats


def rate(accepted: int, total: int) -> float | None:
    return round(accepted / total, 4) if total else None


def _costs(conn: Connection, job_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(
                VerifierCost.verifier,
                VerifierCost.model,
                VerifierCost.verdicts,
                VerifierCost.seconds,
                VerifierCost.prompt_tokens,
                VerifierCost.completion_tokens,
            ).where(VerifierCost.job_id == job_id)
        )
    )


def verdict_stats(
    conn: Connection, job_id: str, spec: dict[str, Any]
) -> tuple[list[VerifierStats], dict[str, int]]:
    """Acceptance and cost per verifier (in the job's order) and each rejection reason with its
    count, the most frequent first: from the job's verdict counts and costs, a few rows whatever its
    size."""
    accepted: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    rows = conn.execute(
        select(VerdictCount.verifier, VerdictCount.accepted, VerdictCount.reason, VerdictCount.samples).where(
            VerdictCount.job_id == job_id
        )
    )
    for verifier, ok, reason, samples in rows:
        (accepted if ok else rejected)[verifier] += samples
        if reason:
            reasons[reason] += samples
    seconds: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for verifier, _, _, spent, prompt_tokens, completion_tokens in _costs(conn, job_id):
        seconds[verifier] += spent
        tokens[verifier] += prompt_tokens + completion_tokens
    order = [v["name"] for v in spec.get("verifiers", [])]
    stats = [
        VerifierStats(
            name=name,
            accepted=accepted[name],
            rejected=rejected[name],
            acceptance_rate=rate(accepted[name], accepted[name] + rejected[name]),
            seconds=round(seconds[name], 3),
            tokens=tokens[name],
        )
        for name in sorted(accepted | rejected, key=lambda n: order.index(n) if n in order else len(order))
    ]
    return stats, dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def usage_by_model(
    conn: Connection, job_id: str, spec: dict[str, Any], prompt_tokens: int, completion_tokens: int
) -> list[ModelUsage]:
    """The job's tokens per model and role: the teacher's (from its tasks), each judge's."""
    usage = [
        ModelUsage(
            model=spec["teacher"]["model"],
            role="teacher",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    ]
    for verifier, model, _, _, prompt, completion in _costs(conn, job_id):
        if model:
            usage.append(
                ModelUsage(
                    model=model, role=verifier, prompt_tokens=int(prompt), completion_tokens=int(completion)
                )
            )
    return usage
