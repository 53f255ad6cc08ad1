"""The conversation a teacher is sent for a prompt: derived, never stored per task.

A task keeps the prompt as the user gave it (text, or chat messages); the job's template and system
prompt are applied here, by the worker before each request and by the readers that show or export
the conversation, so a long system prompt is stored once per job, not once per prompt.
"""

from __future__ import annotations

from typing import Any


def conversation(
    prompt: str | None, messages: list[dict[str, str]] | None, spec: dict[str, Any]
) -> list[dict[str, str]]:
    """Chat turns for the teacher: the system prompt (unless the messages bring their own), then the
    user's messages, or the text prompt wrapped in the job's template."""
    if messages is not None:
        turns = [{"role": m["role"], "content": m["content"]} for m in messages]
    else:
        template = spec.get("prompt_template")
        text = prompt or ""
        turns = [{"role": "user", "content": template.replace("{prompt}", text) if template else text}]
    system = spec.get("system_prompt")
    if system and turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": system})
    return turns
