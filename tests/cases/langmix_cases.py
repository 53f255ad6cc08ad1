"""Language-mix cases: (prompt, completion, expected reason or None); the language is the prompt's."""

from __future__ import annotations

EN = "Compute the sum of the first 10 positive integers."
ZH = "计算前十个正整数的和。"
MIXED = "langmix:mixed"


def trace(think: str, answer: str = "The answer is $\\boxed{55}$.") -> str:
    return f"<think>\n{think}\n</think>\n\n{answer}"


CASES: list[tuple[str, str, str | None]] = [
    # English prompt, English trace: accepted, whatever maths, code or names it holds
    (EN, trace("We add 1 through 10. Using the formula $n(n+1)/2$ gives $10 \\cdot 11 / 2 = 55$."), None),
    (
        EN,
        trace("Let $S = \\sum_{k=1}^{10} k$. Pairing terms, each pair sums to 11, and there are 5 pairs."),
        None,
    ),
    (EN, trace("In Python: `sum(range(1, 11))` returns 55, which matches the formula."), None),
    (EN, trace("The variable x stands for the count; x = 10, so x(x+1)/2 = 55."), None),
    (EN, trace("This is Gauss's trick (the story says he found it as a schoolboy). It gives 55."), None),
    (
        EN,
        trace("The Chinese name of this theorem is “勾股定理”, but here we only need the sum formula: 55."),
        None,
    ),
    (EN, trace("Some call it the 'triangular number' T_10 = 55; in Greek letters, Σ k = 55."), None),
    (EN, trace("See https://en.wikipedia.org/wiki/Triangular_number for the formula. It is 55."), None),
    (EN, trace("```python\nprint(sum(range(11)))  # 输出 55\n```\nThe program prints 55."), None),
    (EN, trace("Using $\\text{总和} = 55$ in the notation of the problem set, the result is 55."), None),
    (EN, trace("1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 = 55."), None),
    (EN, trace("The word 和 means sum. Adding the numbers gives 55."), None),
    (EN, trace("Wait, let me recheck: 1+10 = 11, 2+9 = 11, and so on. Five pairs: 55."), None),
    (EN, trace("Café-style reasoning: naïve addition also gives 55, déjà vu."), None),
    (EN, trace("Hmm. Okay. So 55."), None),
    (EN, trace("We need the sum.", "答案是 $\\boxed{55}$。"), MIXED),
    # English prompt, Chinese slipping into the reasoning: rejected
    (EN, trace("We add the numbers. 我们先把这个表达式拆开来计算。 The total is 55."), MIXED),
    (EN, trace("First pair the terms. 然后再检查每一步的结果是否正确。 So 55."), MIXED),
    (EN, trace("我们需要计算从一到十的和。所以答案是五十五。"), MIXED),
    (EN, trace("Pairing gives 11 five times.\n所以最终的结果是五十五\nHence 55."), MIXED),
    (EN, trace("The sum formula n(n+1)/2 applies. 这是等差数列求和公式的直接应用. 55."), MIXED),
    (EN, trace("Let me think. 嗯，让我再想一想这个问题。Yes, 55."), MIXED),
    (EN, trace("Sum = 55. 验证一下：十一乘以五等于五十五。"), MIXED),
    (EN, trace("Using Gauss: 用高斯的方法配对求和 gives 55."), MIXED),
    (EN, trace("Мы складываем числа от одного до десяти. The sum is 55."), MIXED),
    (EN, trace("Compute 1+...+10. これは等差数列の和です。 So 55."), MIXED),
    # Chinese prompt, Chinese trace: accepted, with maths, variables, code and terms
    (ZH, trace("我们用求和公式 $n(n+1)/2$，得到 $10 \\times 11 / 2 = 55$。", "答案是 $\\boxed{55}$。"), None),
    (ZH, trace("设 x 为项数，x = 10，所以和为 55。", "答案是 55。"), None),
    (ZH, trace("把首尾配对：1+10=11，2+9=11，共 5 对，所以是 55。", "答案：55"), None),
    (ZH, trace("用 Python 验证：`sum(range(11))` 的结果是 55。", "答案是 55。"), None),
    (ZH, trace("这叫做 Gauss 求和法，也可以用 DP 的思路，结果是 55。", "答案是 55。"), None),
    (ZH, trace("这是一个 triangular number，即三角形数，等于 55。", "答案是 55。"), None),
    (ZH, trace('公式是 "sum of arithmetic series"，代入得 55。', "答案是 55。"), None),
    (
        ZH,
        trace(
            "```python\ntotal = 0\nfor i in range(1, 11):\n    total += i\n```\n所以是 55。", "答案是 55。"
        ),
        None,
    ),
    (ZH, trace("等差数列求和：首项 1，末项 10，项数 10，和为 55。", "答案是 $\\boxed{55}$。"), None),
    (ZH, trace("首尾相加得 11，共五对。", "The answer is 55."), MIXED),  # a whole English sentence
    (ZH, trace("可以用 dynamic programming 来做，但直接配对更快，结果是 55。", "答案是 55。"), None),
    # Chinese prompt, English prose slipping in: rejected
    (ZH, trace("我们先配对。 Let me double check this carefully. 结果是 55。", "答案是 55。"), MIXED),
    (ZH, trace("Okay, so we need to add the numbers from one to ten. 和为 55。", "答案是 55。"), MIXED),
    (ZH, trace("首尾配对。 Wait, that does not look right, let me redo it. 还是 55。", "答案是 55。"), MIXED),
    (ZH, trace("We use the formula for the sum of an arithmetic series and get 55.", "答案是 55。"), MIXED),
    (ZH, trace("求和公式适用。 Therefore the final result is fifty five. 55。", "答案是 55。"), MIXED),
    (ZH, trace("这是简单的加法。", "So the final answer to this question is 55."), MIXED),
]
