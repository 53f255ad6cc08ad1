"""Every shape a server may return becomes the same sample fields."""

from __future__ import annotations

import pytest

from service.reasoning import split_completion, split_text

CASES = [
    # (content, reasoning field, completion, think, answer)
    (
        "<think>\nsteps\n</think>\n\nThe answer is 4.",
        None,
        "<think>\nsteps\n</think>\n\nThe answer is 4.",
        "steps",
        "The answer is 4.",
    ),
    ("steps\n</think>\n\n4", None, "steps\n</think>\n\n4", "steps", "4"),  # template opened the block
    ("<think>a</think><answer> 4 </answer>", None, "<think>a</think><answer> 4 </answer>", "a", "4"),
    ("The answer is 4.", None, "The answer is 4.", None, "The answer is 4."),
    ("<think>cut off by max_tokens", None, "<think>cut off by max_tokens", "cut off by max_tokens", None),
    (
        "The answer is 4.",
        "steps",
        "<think>\nsteps\n</think>\n\nThe answer is 4.",
        "steps",
        "The answer is 4.",
    ),
    (None, "all reasoning, cut off", "<think>\nall reasoning, cut off", "all reasoning, cut off", None),
    ("<think>a</think>", None, "<think>a</think>", "a", None),
    (None, None, "", None, None),
    ("\n  <think>open, cut off", None, "\n  <think>open, cut off", "open, cut off", None),
    ("so <think>late", None, "so <think>late", None, "so <think>late"),  # not at the start: no block
    ("<think>a</think>b</think>c", None, "<think>a</think>b</think>c", "a", "b</think>c"),  # first close
    ("lead <think> a </think> 4", None, "lead <think> a </think> 4", "a", "4"),
]


@pytest.mark.parametrize(("content", "reasoning", "completion", "think", "answer"), CASES)
def test_split(
    content: str | None, reasoning: str | None, completion: str, think: str | None, answer: str | None
) -> None:
    split = split_completion(content, reasoning)
    assert (split.completion, split.think, split.answer) == (completion, think, answer)


@pytest.mark.parametrize(("content", "reasoning"), [(c[0], c[1]) for c in CASES] + [("4", "  spaced \n")])
def test_the_parts_read_again_from_the_stored_completion_are_the_same(
    content: str | None, reasoning: str | None
) -> None:
    """Only the completion is stored: the think part shards and pages show is read from it again."""
    split = split_completion(content, reasoning)
    assert split_text(split.completion) == split
