"""Sybil parsers beside the shell blocks: relative links, and shell blocks in disguise.

Links are found by markdown-it-py (CommonMark), not by a pattern: a `[text](target)`
inside code is no link, and a link split over lines still is one. Each relative link is
one example: its file must exist and, for a `#fragment` into Markdown, a heading must
give that anchor (GitHub's rule: lower case, punctuation dropped, spaces to dashes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from sybil import Document, Example, Region
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

SHELL_ALIASES = r"bash|shell|console|zsh|shell-session"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading's text."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor the headings of a Markdown file give (duplicates numbered)."""
    tokens = MarkdownIt("commonmark").parse(path.read_text())
    seen: dict[str, int] = {}
    found = set()
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type != "heading_open":
            continue
        anchor = github_anchor(inline.content)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return frozenset(found)


def check_link(example: Example) -> str | None:
    """A relative link's file exists, and its #fragment is a heading there."""
    target: str = example.parsed
    parts = urlsplit(target)
    here = Path(example.path)
    path = (here.parent / unquote(parts.path)).resolve() if parts.path else here
    if not path.exists():
        return f"{example.path}:{example.line}: broken link {target}: no {path}"
    if parts.fragment and path.suffix == ".md":
        if parts.fragment not in anchors(path):
            return f"{example.path}:{example.line}: broken link {target}: no heading"
    return None


def is_relative(target: str) -> bool:
    """Not a URL with a scheme or host (those are not checked: no network here)."""
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


class RelativeLinkParser:
    """One example per relative link (and image) of a Markdown document."""

    def __call__(self, document: Document) -> Iterable[Region]:
        text = document.text
        line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        for token in MarkdownIt("commonmark").parse(text):
            if token.type != "inline" or token.map is None:
                continue
            position = line_starts[token.map[0]]
            for child in token.children or []:
                target = child.attrGet("href") or child.attrGet("src")
                if not isinstance(target, str) or not is_relative(target):
                    continue
                start = text.find(f"({target}", position)
                if start < 0:
                    continue  # a reference-style link: none in these docs
                position = start + len(target) + 1
                yield Region(start, position, target, check_link)


def refuse_shell_alias(example: Example) -> str:
    """A shell block under another name would escape the docs tests."""
    return (
        f"{example.path}:{example.line}: a ```{example.parsed} block: write shell "
        "commands as ```sh so that the docs tests run them (or mark them skipped)"
    )


class ShellAliasParser:
    """Flags ```bash, ```shell, ```console ... blocks."""

    lexer = FencedCodeBlockLexer(language=SHELL_ALIASES)

    def __call__(self, document: Document) -> Iterable[Region]:
        for lexed in self.lexer(document):
            yield Region(
                lexed.start, lexed.end, lexed.lexemes["language"], refuse_shell_alias
            )
