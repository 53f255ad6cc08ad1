"""reasoning-gym's prompts and the ``reasoning_gym`` verifier: the task's own scorer on the extracted
answer, a full score required (its partial credit is not an accepted sample)."""

from __future__ import annotations

from typing import Any

import pytest
import reasoning_gym

from service.errors import InvalidJob
from service.presets.procedural import procedural_prompts, task_spec
from verifiers.base import Candidate, Verdict
from verifiers.procedural import ProceduralOptions, ReasoningGymVerifier, extract


def _verdict(prompt: dict[str, Any], answer: str, **options: Any) -> Verdict:
    verifier = ReasoningGymVerifier(ProceduralOptions.model_validate(options))
    candidate = Candidate(f"<think>x</think>{answer}", "x", answer, metadata=prompt.get("metadata"))
    return verifier.verify(candidate)


def test_prompts_carry_their_entry_and_ids_say_task_seed_and_index() -> None:
    prompts = list(procedural_prompts(["basic_arithmetic:3:1", "spell_backward:2"], {}))
    assert [p["id"] for p in prompts] == [
        "basic_arithmetic-1-0",
        "basic_arithmetic-1-1",
        "basic_arithmetic-1-2",
        "spell_backward-0-0",
        "spell_backward-0-1",
    ]
    original = reasoning_gym.create_dataset("basic_arithmetic", size=3, seed=1)[0]
    entry = prompts[0]["metadata"]["reasoning_gym"]
    assert prompts[0]["prompt"] == original["question"] and prompts[0]["reference"] == original["answer"]
    assert entry["metadata"]["source_dataset"] == "basic_arithmetic"
    assert entry["metadata"]["difficulty"]["num_terms"] == list(
        original["metadata"]["difficulty"]["num_terms"]
    )


def test_a_task_config_reaches_the_task() -> None:
    (prompt,) = procedural_prompts(
        ["basic_arithmetic:1:4"], {"basic_arithmetic": {"min_terms": 5, "max_terms": 5}}
    )
    assert prompt["metadata"]["reasoning_gym"]["metadata"]["num_terms"] == 5


@pytest.mark.parametrize(
    ("specs", "configs", "message"),
    [
        (["no_such_task:2"], {}, "--reasoning-gym no_such_task: Dataset 'no_such_task' not registered"),
        (["basic_arithmetic:two"], {}, "expected TASK[:COUNT[:SEED]] with whole numbers"),
        (["basic_arithmetic:0"], {}, "COUNT at least 1"),
        (["basic_arithmetic:1"], {"basic_arithmetic": {"bogus": 1}}, "unexpected keyword argument 'bogus'"),
        (
            ["basic_arithmetic:1"],
            {"chain_sum": {}},
            "--reasoning-gym-config chain_sum: no --reasoning-gym names",
        ),
    ],
)
def test_bad_task_specs_are_named(specs: list[str], configs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJob, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        list(procedural_prompts(specs, configs))
    assert caught.value.field == "reasoning_gym"


def test_the_scorer_decides_and_partial_credit_is_not_enough() -> None:
    prompts = list(procedural_prompts(["basic_arithmetic:20:1"], {}))
    prompt = next(p for p in prompts if p["reference"] == "3")
    assert _verdict(prompt, "<answer>3</answer>").accepted
    partial = _verdict(prompt, "<answer>-3</answer>")
    assert (partial.reason, partial.details["score"]) == ("reasoning_gym:wrong_answer", 0.5)
    assert _verdict(prompt, "<answer>-3</answer>", min_score=0.5).accepted


def test_the_answer_is_the_last_answer_tag_else_the_last_box_else_the_whole_part() -> None:
    assert extract("first <answer>1</answer> then <answer> 2 </answer>") == "2"
    assert extract("so \\boxed{7} and \\boxed{8}") == "8"
    assert extract("  tlaps  ") == "tlaps"
    assert extract("\\boxed{7}", "answer_tag") is None
    assert extract("   ") is None


def test_a_prompt_without_an_entry_is_named() -> None:
    verdict = _verdict({"metadata": {"level": 1}}, "<answer>3</answer>")
    assert verdict.reason == "reasoning_gym:no_entry" and "'reasoning_gym'" in verdict.details["error"]


def test_a_sorted_word_list_is_scored_by_its_task_not_by_math_rules() -> None:
    (prompt,) = procedural_prompts(["word_sorting:1:1"], {})
    answer = prompt["reference"]
    assert _verdict(prompt, f"<answer>{answer}</answer>").accepted
    assert not _verdict(prompt, f"<answer>{', '.join(reversed(answer.split(', ')))}</answer>").accepted


def test_task_spec_defaults() -> None:
    assert task_spec("leg_counting") == ("leg_counting", 100, 0)
    assert task_spec("leg_counting:5:9") == ("leg_counting", 5, 9)
