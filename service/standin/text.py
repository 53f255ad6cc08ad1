"""What the stand-in teacher writes: R1-style completions for arithmetic prompts, and their token counts.

Each sample is a function of (prompt, seed, index): correct in ``correct_share`` of the samples, else
wrong, malformed, over-long or language-mixed, so that every verifier meets real cases. With a target
length, the reasoning is padded with filler to it, for long-tailed lengths like real traces.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import math
import operator
import random
import re
import zlib
from collections.abc import Callable
from fractions import Fraction
from typing import Any

KINDS = ("correct", "wrong", "malformed", "overlong", "langmix")
_EXPRESSION = re.compile(r"[\d(][\d\s+\-*/^().]*[\d)]")
_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+|[^\w\s]")
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}
_CHINESE = "我们先把这个表达式拆开来计算，然后再检查每一步的结果是否正确。"
MAX_EXPONENT = 64


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: words, CJK characters and punctuation marks each count one."""
    return sum(1 for _ in _TOKEN.finditer(text))


PIECE_PATTERN = r"\s*(?:[\u3400-\u9fff]|[^\W\u3400-\u9fff]+|[^\w\s])"
_PIECE = re.compile(PIECE_PATTERN)
VOCAB_SIZE = 32_000
SPECIAL_IDS = 3  # pad, bos, eos


def token_pieces(text: str) -> list[str]:
    """The text as the stand-in's tokens, each with the whitespace before it (as BPE tokens carry it),
    so that they join back into the text; as many as ``count_tokens`` counts."""
    return _PIECE.findall(text)


def token_id(piece: str) -> int:
    """The stand-in tokenizer's id of a token: a stable hash into a 32,000-token vocabulary."""
    return SPECIAL_IDS + zlib.crc32(piece.encode()) % (VOCAB_SIZE - SPECIAL_IDS)


def truncate(text: str, max_tokens: int) -> tuple[str, int, bool]:
    spans = [m.end() for m in itertools.islice(_TOKEN.finditer(text), max_tokens + 1)]
    if len(spans) <= max_tokens:
        return text, len(spans), False
    return text[: spans[max_tokens - 1]], max_tokens, True


def _evaluate(node: ast.AST, steps: list[str]) -> Fraction:
    """Exact rational evaluation that records each binary step, as a person would write it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, steps)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, steps), _evaluate(node.right, steps)
        if isinstance(node.op, ast.Pow) and (right.denominator != 1 or abs(right) > MAX_EXPONENT):
            raise ValueError("exponent out of range")
        value = Fraction(_OPS[type(node.op)](left, right))
        steps.append(
            f"{show_number(left)} {_SYMBOL[type(node.op)]} {show_number(right)} = {show_number(value)}"
        )
        return value
    raise ValueError("not arithmetic")


def show_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def solve(prompt: str) -> tuple[str, Fraction, list[str]] | None:
    """The longest arithmetic expression in the prompt, its value and the steps; None if none."""
    for candidate in sorted(_EXPRESSION.findall(prompt), key=len, reverse=True):
        expression = candidate.strip()
        if not any(op in expression for op in "+-*/^"):
            continue
        steps: list[str] = []
        try:
            tree = ast.parse(expression.replace("^", "**"), mode="eval")
            return expression, _evaluate(tree.body, steps), steps
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
            continue
    return None


def is_hard(prompt: str, above: int) -> bool:
    """Whether the prompt's arithmetic holds a number greater than ``above`` (the difficulty profile)."""
    solved = solve(prompt)
    return solved is not None and any(int(number) > above for number in re.findall(r"\d+", solved[0]))


def seeded_rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _choose_kind(rng: random.Random, correct_share: float, failures: tuple[str, ...]) -> str:
    if rng.random() < correct_share:
        return "correct"
    return rng.choice(failures)


def compose(
    prompt: str, seed: int, index: int, correct_share: float, failures: tuple[str, ...] = KINDS[1:]
) -> str:
    """The full completion for sample ``index`` of ``prompt`` under ``seed``; a sample that is not
    correct is one of ``failures`` (a prompt too hard for the model gets wrong answers alone)."""
    rng = seeded_rng(seed, index, prompt)
    kind = _choose_kind(rng, correct_share, failures)
    solved = solve(prompt)
    if solved is None:
        think_lines = [
            "The question does not contain arithmetic I can work out.",
            "I will answer as plainly as I can.",
        ]
        answer = "I cannot determine a numeric answer to this question."
    else:
        expression, value, steps = solved
        final = value + rng.choice((-3, -2, -1, 1, 2, 5, 10)) if kind == "wrong" else value
        think_lines = [
            f"Let me work through {expression} step by step.",
            *steps,
            f"So the result is {show_number(final)}.",
        ]
        answer = f"The answer is $\\boxed{{{_latex(final)}}}$."
    if kind == "langmix":
        think_lines.insert(1, _CHINESE)
    if kind == "overlong":
        think_lines.insert(1, " ".join([f"Let me double-check {think_lines[0].lower()}"] * 60))
    think = "\n".join(think_lines)
    if kind == "malformed":
        shape = rng.choice(("unclosed", "no_think", "double"))
        if shape == "unclosed":
            return f"<think>\n{think}\n\n{answer}"
        if shape == "no_think":
            return answer
        return f"<think>\n{think}\n</think>\n<think>\n{think}\n</think>\n\n{answer}"
    return f"<think>\n{think}\n</think>\n\n{answer}"


def _filler_line(step: int) -> str:
    """One line of padding reasoning; each is its own (numbered), so padding never reads as a loop."""
    return f"Let me re-check step {step}: the partial result {step * 37 % 1000} still holds, so I can go on."


_FILLER_TOKENS = count_tokens(_filler_line(1))


def pad(text: str, target_tokens: int) -> str:
    """The completion with filler reasoning put in at the start of its think part, to about the target."""
    missing = target_tokens - count_tokens(text)
    if missing < _FILLER_TOKENS:
        return text
    filler = "\n".join(_filler_line(step) for step in range(1, missing // _FILLER_TOKENS + 1))
    head, newline, rest = text.partition("\n")
    return f"{head}\n{filler}\n{rest}" if newline else f"{filler}\n\n{text}"


def looping(prompt: str, max_tokens: int) -> str:
    """A trace that falls into a loop, as R1-style models do: one paragraph again and again, past
    ``max_tokens`` (the caller cuts it there)."""
    solved = solve(prompt)
    subject = solved[0] if solved else "the question"
    paragraph = (
        f"Wait, I am not sure about {subject}. Let me start over and work it out again from the "
        "beginning, one step at a time, to be certain.\n\n"
    )
    repeats = max_tokens // count_tokens(paragraph) + 2
    return f"<think>\nLet me work through {subject} step by step.\n" + paragraph * repeats


def drifting(text: str, target_tokens: int) -> str:
    """A correct trace whose reasoning switches to Chinese halfway to ``target_tokens`` and stays there
    until its end (language drift)."""
    head, close, tail = text.partition("</think>")
    padded = pad(head, target_tokens // 2)
    lines, tokens, step = [], 0, 1
    while tokens < target_tokens - count_tokens(padded) - count_tokens(close + tail):
        line = f"第{step}步：我们再检查一下刚才的结果，{step}乘以{step + 1}等于{step * (step + 1)}。"
        lines.append(line)
        tokens += count_tokens(line)
        step += 1
    return padded.rstrip("\n") + "\n" + "\n".join(lines) + "\n" + close + tail


def target_length(prompt: str, seed: int, index: int, median: int, sigma: float) -> int:
    """A log-normal completion length for this sample, the same for the same request."""
    draw = seeded_rng("length", seed, index, prompt).gauss(0.0, 1.0)
    return max(1, round(median * math.exp(sigma * draw)))
