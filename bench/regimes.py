"""The throughput bench's regimes: the stand-in engine each models and the job's shape, with the prompts
and seed that the bare client and the pipeline both send.
"""

from __future__ import annotations

from dataclasses import dataclass

SEED = 1234


# Before each timed run, the same processes (or client) serve a short round: one prompt per request
# slot, short completions. Connections, caches and first-call costs are then paid outside the figures,
# which are those of a service that has been running, as a long job's would be.
WARM_UP_MAX_TOKENS = 64


@dataclass(frozen=True)
class Regime:
    name: str
    slots: int
    n: int
    prompts: int
    median: int
    sigma: float
    max_tokens: int
    token_s: float
    slowdown: float
    ttft_s: float

    @property
    def in_flight(self) -> int:
        """Requests kept out: enough sequences to fill the engine's slots."""
        return self.slots // self.n

    def requests_out(self, streaming: bool) -> int:
        """Requests at the teacher at once: one a prompt, or streamed, one a sample."""
        return self.in_flight * (self.n if streaming else 1)

    def teacher_args(self) -> list[str]:
        return [
            "--max-num-seqs", str(self.slots), "--token-delay", str(self.token_s),
            "--batch-slowdown", str(self.slowdown), "--ttft", str(self.ttft_s),
            "--length-median", str(self.median), "--length-sigma", str(self.sigma),
        ]  # fmt: skip


REGIMES = {
    "realistic": Regime("realistic", 256, 4, 1000, 1500, 0.6, 4096, 0.0002, 0.5, 0.05),
    "stress": Regime("stress", 1024, 4, 2400, 100, 0.3, 512, 0.004, 0.5, 0.05),
}


def prompts(count: int, prefix: str = "q") -> list[dict[str, str]]:
    return [
        {
            "id": f"{prefix}{i}",
            "prompt": f"Compute ({i} + 7) * {i % 13 + 2} - {i % 5}.",
            "reference": str((i + 7) * (i % 13 + 2) - i % 5),
        }
        for i in range(count)
    ]
