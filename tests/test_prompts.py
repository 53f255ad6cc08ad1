"""The conversation sent to the teacher, derived from a prompt and its job's template and system prompt."""

from __future__ import annotations

from service.database.prompts import conversation

SPEC = {"prompt_template": "Think step by step. {prompt}", "system_prompt": "You are careful."}


def test_text_prompt_in_template_after_the_system_prompt() -> None:
    assert conversation("Compute 2 + 2.", None, SPEC) == [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": "Think step by step. Compute 2 + 2."},
    ]


def test_plain_text_prompt() -> None:
    assert conversation("Compute 2 + 2.", None, {}) == [{"role": "user", "content": "Compute 2 + 2."}]


def test_chat_prompts_keep_their_turns_and_their_own_system_prompt() -> None:
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "2 + 2?"},
    ]
    assert conversation(None, chat, SPEC) == [{"role": "system", "content": "You are careful."}, *chat]
    own = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}]
    assert conversation(None, own, SPEC) == own
