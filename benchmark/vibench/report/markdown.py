"""Markdown output (for a README or an appendix): the same DisplayTables as the HTML pages.

Every cell is escaped for GitHub-flavoured Markdown tables (pipes, backslashes, newlines,
and HTML-significant characters, so a hostile method name stays text when the Markdown is
rendered to HTML by a viewer)."""
from __future__ import annotations

from typing import Iterable

from vibench.report.tables import DisplayTable

_MD_ESCAPES = {"\\": "\\\\", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "*": "\\*",
               "_": "\\_", "`": "\\`", "[": "\\[", "]": "\\]"}


def md_escape(text: str) -> str:
    """Escape `text` for one Markdown table cell (single line)."""
    out = "".join(_MD_ESCAPES.get(ch, ch) for ch in str(text))
    return " ".join(out.split())


def render_table(t: DisplayTable, *, level: int = 3) -> str:
    """One table with its title, caption and notes."""
    lines = [f"{'#' * level} {md_escape(t.title)}", ""]
    if t.caption:
        lines += [md_escape(t.caption), ""]
    if not t.rows:
        lines += ["(no rows)", ""]
    else:
        lines.append("| " + " | ".join(md_escape(h) for h in t.flat_labels()) + " |")
        lines.append("|" + "|".join("---" for _ in t.header) + "|")
        for row in t.rows:
            lines.append("| " + " | ".join(md_escape(c.text) for c in row) + " |")
        lines.append("")
    for n in t.notes:
        lines.append(f"* {md_escape(n)}")
    if t.notes:
        lines.append("")
    return "\n".join(lines)


def render_document(title: str, intro: Iterable[str],
                    sections: list[tuple[str, list[DisplayTable]]],
                    images: list[tuple[str, str]] | None = None) -> str:
    """A whole Markdown document: title, intro paragraphs, then (heading, tables) sections and
    optional (alt text, relative path) images."""
    parts = [f"# {md_escape(title)}", ""]
    parts += [md_escape(p) + "\n" for p in intro]
    for heading, tables in sections:
        parts += [f"## {md_escape(heading)}", ""]
        parts += [render_table(t) for t in tables]
    if images:
        parts += ["## Plots", ""]
        parts += [f"![{md_escape(alt)}]({path})\n" for alt, path in images]
    return "\n".join(parts).rstrip() + "\n"
