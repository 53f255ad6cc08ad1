"""Math cases: (category, reference, the answer part of a completion, expected accepted).

Answers come in the three forms the extractor reads: a boxed answer, an ``<answer>`` block and an
"answer is" line.
"""

from __future__ import annotations


def boxed(x: str) -> str:
    return f"So the final answer is $\\boxed{{{x}}}$."


def block(x: str) -> str:
    return f"<answer>{x}</answer>"


def line(x: str) -> str:
    return f"Checking once more.\nThe answer is {x}"


T, F = True, False

CASES: list[tuple[str, str, str, bool]] = [
    # integers
    ("integer", "126", boxed("126"), T),
    ("integer", "126", boxed("125"), F),
    ("integer", "126", block("126"), T),
    ("integer", "126", line("126."), T),
    ("integer", "126", line("$126$."), T),
    ("integer", "-7", boxed("-7"), T),
    ("integer", "-7", boxed("7"), F),
    ("integer", "0", boxed("0"), T),
    ("integer", "0", boxed("-0"), T),
    ("integer", "1000", boxed("1000"), T),
    ("integer", "1000", boxed("1000.0"), T),
    ("integer", "3", boxed("3.0"), T),
    ("integer", "3", boxed("3.01"), F),
    ("integer", "42", boxed("\\,42\\,"), T),
    ("integer", "42", boxed("{42}"), T),
    ("integer", "12", boxed("2 \\cdot 6"), T),
    ("integer", "5", boxed("3+2"), T),
    ("integer", "5", boxed("3+3"), F),
    ("integer", "64", boxed("2^6"), T),
    ("integer", "64", boxed("2^{6}"), T),
    ("integer", "64", boxed("4^3"), T),
    ("integer", "100", boxed("10^2"), T),
    # fractions and decimals
    ("fraction", "\\frac{1}{2}", boxed("0.5"), T),
    ("fraction", "0.5", boxed("\\frac{1}{2}"), T),
    ("fraction", "1/2", boxed("\\dfrac{1}{2}"), T),
    ("fraction", "\\frac{1}{2}", boxed("\\tfrac12"), T),
    ("fraction", "\\frac{1}{2}", boxed("2/4"), T),
    ("fraction", "\\frac{1}{2}", boxed("\\frac{2}{4}"), T),
    ("fraction", "\\frac{1}{3}", boxed("0.333333"), T),
    ("fraction", "\\frac{1}{3}", boxed("0.33"), F),
    ("fraction", "\\frac{1}{3}", boxed("\\frac{1}{4}"), F),
    ("fraction", "\\frac{2417}{45}", boxed("\\frac{2417}{45}"), T),
    ("fraction", "\\frac{2417}{45}", boxed("\\frac{2418}{45}"), F),
    ("fraction", "-\\frac{3}{4}", boxed("-0.75"), T),
    ("fraction", "-\\frac{3}{4}", boxed("\\frac{-3}{4}"), T),
    ("fraction", "-\\frac{3}{4}", boxed("\\frac{3}{4}"), F),
    ("fraction", "\\frac{7}{3}", boxed("2\\frac{1}{3}"), T),
    ("fraction", "\\frac{7}{3}", line("7/3"), T),
    ("fraction", "\\frac{7}{3}", block("\\frac{7}{3}"), T),
    ("decimal", "0.25", boxed("\\frac{1}{4}"), T),
    ("decimal", "0.25", boxed(".25"), T),
    ("decimal", "0.25", boxed("0.250"), T),
    ("decimal", "0.25", boxed("0.26"), F),
    ("decimal", "3.14", boxed("3.14"), T),
    ("decimal", "3.14", boxed("3.141"), F),
    ("decimal", "2.5", boxed("\\frac{5}{2}"), T),
    ("decimal", "1.5", boxed("1\\frac{1}{2}"), T),
    # percentages
    ("percent", "50\\%", boxed("50\\%"), T),
    ("percent", "50\\%", boxed("50"), T),
    ("percent", "50\\%", boxed("0.5"), T),
    ("percent", "0.5", boxed("50\\%"), T),
    ("percent", "25\\%", boxed("\\frac{1}{4}"), T),
    ("percent", "25\\%", boxed("30\\%"), F),
    ("percent", "12.5\\%", boxed("12.5\\%"), T),
    ("percent", "12.5\\%", boxed("0.125"), T),
    # roots, pi, LaTeX expressions
    ("latex", "2\\sqrt{2}", boxed("\\sqrt{8}"), T),
    ("latex", "\\sqrt{8}", boxed("2\\sqrt{2}"), T),
    ("latex", "2\\sqrt{2}", boxed("2\\sqrt{3}"), F),
    ("latex", "\\sqrt{2}/2", boxed("\\frac{\\sqrt{2}}{2}"), T),
    ("latex", "\\frac{\\sqrt{2}}{2}", boxed("\\frac{1}{\\sqrt{2}}"), T),
    ("latex", "3\\sqrt{3}", boxed("\\sqrt{27}"), T),
    ("latex", "\\sqrt{3}", boxed("1.7320508"), T),
    ("latex", "\\pi", boxed("\\pi"), T),
    ("latex", "2\\pi", boxed("\\pi \\cdot 2"), T),
    ("latex", "2\\pi", boxed("\\pi"), F),
    ("latex", "\\frac{\\pi}{4}", boxed("\\frac{1}{4}\\pi"), T),
    ("latex", "\\frac{\\pi}{4}", boxed("45^\\circ"), F),  # degrees are not converted to radians
    ("latex", "e^2", boxed("e^{2}"), T),
    ("latex", "\\ln 2", boxed("\\log 2"), F),  # log's base is ambiguous
    ("latex", "\\sin\\frac{\\pi}{6}", boxed("\\frac{1}{2}"), T),
    ("latex", "\\binom{5}{2}", boxed("10"), T),
    ("latex", "5!", boxed("120"), T),
    ("latex", "5!", boxed("24"), F),
    ("latex", "\\left(\\frac{1}{2}\\right)^2", boxed("\\frac{1}{4}"), T),
    ("latex", "\\frac{1+\\sqrt{5}}{2}", boxed("\\frac{\\sqrt{5}+1}{2}"), T),
    ("latex", "\\frac{1+\\sqrt{5}}{2}", boxed("\\frac{\\sqrt{5}-1}{2}"), F),
    ("latex", "2^{10}", boxed("1024"), T),
    ("latex", "10^{-3}", boxed("0.001"), T),
    # symbolic
    ("symbolic", "x^2+2x+1", boxed("(x+1)^2"), T),
    ("symbolic", "(x+1)^2", boxed("x^2+2x+1"), T),
    ("symbolic", "x^2+2x+1", boxed("(x-1)^2"), F),
    ("symbolic", "2x", boxed("x+x"), T),
    ("symbolic", "2x", boxed("x^2"), F),
    ("symbolic", "\\frac{x}{2}", boxed("0.5x"), T),
    ("symbolic", "a+b", boxed("b+a"), T),
    ("symbolic", "ab", boxed("ba"), T),
    ("symbolic", "(a-b)(a+b)", boxed("a^2-b^2"), T),
    ("symbolic", "(a-b)(a+b)", boxed("a^2+b^2"), F),
    ("symbolic", "\\frac{1}{x}", boxed("x^{-1}"), T),
    ("symbolic", "\\sqrt{x^2}", boxed("|x|"), T),
    ("symbolic", "3n+1", boxed("1+3n"), T),
    ("symbolic", "3n+1", boxed("3n-1"), F),
    ("symbolic", "n(n+1)/2", boxed("\\frac{n^2+n}{2}"), T),
    # equations
    ("equation", "2", boxed("x=2"), T),
    ("equation", "x=2", boxed("2"), T),
    ("equation", "x=2", boxed("x = 2"), T),
    ("equation", "x=2", boxed("x=3"), F),
    ("equation", "y=2x+1", boxed("y=1+2x"), T),
    ("equation", "y=2x+1", boxed("y=2x-1"), F),
    ("equation", "x=-1", boxed("-1"), T),
    ("equation", "k=\\frac{1}{2}", boxed("0.5"), T),
    # intervals
    ("interval", "(1,2)", boxed("(1,2)"), T),
    ("interval", "(1,2)", boxed("[1,2]"), F),
    ("interval", "[1,2]", boxed("(1,2)"), F),
    ("interval", "[1,2]", boxed("[1,2]"), T),
    ("interval", "[0,\\infty)", boxed("[0,\\infty)"), T),
    ("interval", "[0,\\infty)", boxed("(0,\\infty)"), F),
    ("interval", "(-\\infty,3]", boxed("(-\\infty, 3]"), T),
    ("interval", "(0,1)", boxed("x \\in (0,1)"), T),
    ("interval", "(-\\infty,1)\\cup(2,\\infty)", boxed("(-\\infty,1)\\cup(2,\\infty)"), T),
    ("interval", "(-\\infty,1)\\cup(2,\\infty)", boxed("(-\\infty,1)\\cup[2,\\infty)"), F),
    ("interval", "[2,5)", boxed("[2,5)"), T),
    # sets and multiple answers
    ("set", "\\{1,2\\}", boxed("\\{2,1\\}"), T),
    ("set", "\\{1,2\\}", boxed("\\{1,3\\}"), F),
    ("set", "\\{1,2,3\\}", boxed("\\{3,2,1\\}"), T),
    ("set", "\\{1,2,3\\}", boxed("\\{1,2\\}"), F),
    ("multiple", "1,2", boxed("2,1"), T),
    ("multiple", "1, 2", boxed("1,2"), T),
    ("multiple", "1,2", boxed("1,3"), F),
    ("multiple", "-2, 3", boxed("3, -2"), T),
    ("multiple", "x=1, x=2", boxed("1, 2"), T),
    ("multiple", "\\pm 2", boxed("2, -2"), T),
    ("multiple", "1,2,3", boxed("1,2"), F),
    # tuples and points
    ("tuple", "(1,2)", boxed("(1, 2)"), T),
    ("tuple", "(3,4,5)", boxed("(3,4,5)"), T),
    ("tuple", "(3,4,5)", boxed("(3,5,4)"), F),
    ("tuple", "(1,-1)", boxed("(1,-1)"), T),
    ("tuple", "(1,-1)", boxed("(-1,1)"), F),
    ("tuple", "(\\frac{1}{2}, 2)", boxed("(0.5, 2)"), T),
    # matrices and vectors
    (
        "matrix",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        boxed("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
        T,
    ),
    (
        "matrix",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        boxed("\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),
        T,
    ),
    (
        "matrix",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        boxed("\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}"),
        F,
    ),
    ("matrix", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", boxed("\\begin{pmatrix}1\\\\2\\end{pmatrix}"), T),
    (
        "matrix",
        "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}",
        boxed("\\begin{pmatrix}\\frac{1}{2}&0\\\\0&1\\end{pmatrix}"),
        T,
    ),
    ("matrix", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", boxed("\\begin{pmatrix}2\\\\1\\end{pmatrix}"), F),
    # units
    ("units", "10", boxed("10\\text{ cm}"), T),
    ("units", "10\\text{ cm}", boxed("10"), T),
    ("units", "10\\text{ cm}", boxed("10 \\text{cm}"), T),
    ("units", "10\\text{ cm}", boxed("12\\text{ cm}"), F),
    ("units", "5", boxed("5 \\text{ meters}"), T),
    ("units", "90^\\circ", boxed("90"), T),
    ("units", "90^\\circ", boxed("90^{\\circ}"), T),
    ("units", "\\$18", boxed("18"), T),
    ("units", "18", boxed("\\$18.00"), T),
    ("units", "3\\text{ hours}", boxed("4\\text{ hours}"), F),
    # text answers
    ("text", "\\text{Monday}", boxed("\\text{Monday}"), T),
    ("text", "\\text{Monday}", boxed("\\text{Tuesday}"), F),
    ("text", "\\text{(C)}", boxed("\\text{(C)}"), T),
    ("text", "C", boxed("C"), T),
    ("text", "C", boxed("D"), F),
    ("text", "\\text{yes}", boxed("\\text{yes}"), T),
    ("text", "\\text{yes}", boxed("\\text{no}"), F),
    ("text", "\\text{even}", block("\\text{even}"), T),
    # extraction: nested braces, several boxes, forms, missing answers
    # two different boxes in the final answer are a hedge, even when the last one is right (issue 31)
    ("extraction", "\\frac{1}{2}", "First $\\boxed{3}$, no wait: $\\boxed{\\frac{1}{2}}$.", F),
    ("extraction", "3", "First $\\boxed{3}$, no wait: $\\boxed{\\frac{1}{2}}$.", F),
    ("extraction", "\\frac{\\sqrt{3}}{2}", boxed("\\frac{\\sqrt{3}}{2}"), T),
    ("extraction", "2", "<answer>The result is $\\boxed{2}$</answer>", T),
    ("extraction", "2", "<answer>$2$</answer>", T),
    ("extraction", "2", "The final answer is: 2", T),
    ("extraction", "2", "Final Answer: $2$", T),
    ("extraction", "2", "So the answer is $\\boxed{2", F),
    ("extraction", "2", "I could not finish the computation.", F),
    ("extraction", "2", "The answer is 3", F),
    ("extraction", "2", "\\fbox{2}", T),
    # near misses that must not pass
    ("negative", "1", boxed("0.999"), F),
    ("negative", "100", boxed("1000"), F),
    ("negative", "\\frac{1}{2}", boxed("\\frac{1}{3}"), F),
    ("negative", "2\\sqrt{2}", boxed("2.83"), F),
    ("negative", "x^2", boxed("x^3"), F),
    ("negative", "\\{1,2\\}", boxed("\\{1,2,3\\}"), F),
    ("negative", "-1", boxed("1"), F),
    ("negative", "12", boxed("21"), F),
]
