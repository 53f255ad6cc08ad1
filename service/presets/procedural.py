"""Prompts made by reasoning-gym's procedural tasks (the ``tracemill[reasoning-gym]`` extra).

``tracemill submit --reasoning-gym TASK[:COUNT[:SEED]]`` (repeated for several tasks, each task's
config as JSON with ``--reasoning-gym-config TASK=JSON``) makes COUNT prompts of TASK from SEED. Each
prompt keeps its whole entry (question, answer, metadata) in its metadata under ``reasoning_gym``,
where the ``reasoning_gym`` verifier finds it for the task's own scorer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from service.errors import InvalidJob
from verifiers.procedural import METADATA_KEY

DEFAULT_COUNT = 100
FIELD = "reasoning_gym"


def task_spec(spec: str) -> tuple[str, int, int]:
    """``TASK[:COUNT[:SEED]]`` as (task, count, seed)."""
    task, *rest = spec.split(":")
    try:
        count = int(rest[0]) if rest else DEFAULT_COUNT
        seed = int(rest[1]) if len(rest) > 1 else 0
    except ValueError:
        raise InvalidJob(
            f"--reasoning-gym {spec!r}: expected TASK[:COUNT[:SEED]] with whole numbers", field=FIELD
        ) from None
    if not task or len(rest) > 2 or count < 1:
        raise InvalidJob(
            f"--reasoning-gym {spec!r}: expected TASK[:COUNT[:SEED]], COUNT at least 1", field=FIELD
        )
    return task, count, seed


def _module() -> Any:
    try:
        import reasoning_gym
    except ModuleNotFoundError:
        raise InvalidJob(
            "--reasoning-gym needs the reasoning-gym extra: pip install 'tracemill[reasoning-gym]'",
            field=FIELD,
        ) from None
    return reasoning_gym


def system_prompt() -> str:
    """reasoning-gym's own instruction: think, then the answer in ``<answer>`` tags."""
    return str(_module().utils.SYSTEM_PROMPTS["default"])


def procedural_prompts(specs: list[str], configs: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The prompts of every ``TASK[:COUNT[:SEED]]``, ids ``TASK-SEED-INDEX``."""
    reasoning_gym = _module()
    parsed = [task_spec(spec) for spec in specs]
    unknown = sorted(set(configs) - {task for task, _, _ in parsed})
    if unknown:
        raise InvalidJob(
            f"--reasoning-gym-config {unknown[0]}: no --reasoning-gym names that task", field=FIELD
        )
    for task, count, seed in parsed:
        try:
            dataset = reasoning_gym.create_dataset(task, size=count, seed=seed, **configs.get(task, {}))
        except (ValueError, TypeError, AssertionError) as exc:
            raise InvalidJob(f"--reasoning-gym {task}: {exc}", field=FIELD) from None
        for index in range(count):
            entry = json.loads(
                json.dumps(dataset[index], default=str)
            )  # tuples become lists, as JSON keeps them
            prompt: dict[str, Any] = {
                "id": f"{task}-{seed}-{index}",
                "prompt": entry["question"],
                "metadata": {METADATA_KEY: entry},
            }
            if isinstance(entry.get("answer"), str):
                prompt["reference"] = entry["answer"]
            yield prompt
