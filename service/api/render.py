"""Teacher text as safe HTML: fenced code highlighted by Pygments, everything else escaped.

Math is left as TeX for KaTeX's auto-render in the browser, which skips ``<pre>`` and ``<code>``, so
code is never mistaken for math. Nothing from a completion reaches the page unescaped.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_FORMATTER = HtmlFormatter(cssclass="hl")
_TEX = re.compile(r"\\[a-zA-Z]+|[\^_{}]")
FOLD_CHARS = 1_500  # a longer reasoning part starts folded


def code_css() -> str:
    """The stylesheet of the highlighted code (served as ``pygments.css``)."""
    return str(_FORMATTER.get_style_defs(".hl"))  # type: ignore[no-untyped-call]


def _code(language: str, source: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    return str(highlight(source, lexer, _FORMATTER))


def rich_text(text: str | None) -> Markup:
    """Escaped prose in a pre-wrapped block, with each fenced code block highlighted."""
    if not text:
        return Markup("")
    parts, position = [], 0
    for match in _FENCE.finditer(text):
        parts.append(f'<div class="prose">{escape(text[position : match.start()])}</div>')
        parts.append(_code(match.group(1).lower(), match.group(2)))
        position = match.end()
    parts.append(f'<div class="prose">{escape(text[position:])}</div>')
    return Markup("".join(parts))  # every piece is escaped above or by Pygments


def bare_tex(text: object) -> bool:
    """Whether a short text is bare TeX (a reference like ``\\frac{1}{2}``), to be typeset whole."""
    if not isinstance(text, str) or len(text) > 200 or "$" in text:
        return False
    return _TEX.search(text) is not None


def detail_value(value: Any) -> str:
    """A verdict detail as text: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
