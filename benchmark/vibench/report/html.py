"""Static HTML pages (jinja2, autoescape on): sortable, filterable tables with grouped headers,
a sticky header and frozen first columns, inline CSS/JS only.

Only the two constants CSS and SCRIPT of ``vibench.report.templates`` are inserted unescaped
(as Markup); every string that comes from a result file or the registry goes through ``{{ }}``
with autoescaping."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import jinja2
from markupsafe import Markup

from vibench.report import templates
from vibench.report.tables import DisplayTable


@dataclass(frozen=True)
class Figure:
    """An image on a page: path relative to the page, and its alt text / caption."""

    path: str
    alt: str


@dataclass
class Section:
    """A part of a page: heading (with its anchor id), paragraphs, bullets, link cards
    (href, label, text), tables and figures."""

    heading: str
    id: str = ""
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    cards: list[tuple[str, str, str]] = field(default_factory=list)
    tables: list[DisplayTable] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader({"table.html": templates.TABLE, "page.html": templates.PAGE}),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _leaf(t: DisplayTable, j: int) -> dict[str, Any]:
    cls = f"fz{j}" if j < t.frozen else ""
    titles = t.header_titles or [""] * len(t.header)
    return {"col": j, "label": t.labels()[j], "title": titles[j], "cls": cls}


def _view(t: DisplayTable) -> dict[str, Any]:
    groups, j = [], 0
    for label, span, title in t.groups:
        groups.append({"label": label, "span": span, "title": title,
                       "leaves": [_leaf(t, k) for k in range(j, j + span)]})
        j += span
    rows = []
    for i, r in enumerate(t.rows):
        cells = []
        for k, c in enumerate(r):
            cls = " ".join(x for x in (c.cls, f"fz{k}" if k < t.frozen else "") if x)
            cells.append({"text": c.text, "value": c.value, "cls": cls, "title": c.title,
                          "links": c.links})
        rows.append({"id": t.row_ids[i] if t.row_ids else "",
                     "vb": any("vbm" in c.cls.split() for c in r), "cells": cells})
    return {"id": t.id, "title": t.title, "caption": t.caption, "notes": t.notes,
            "frozen": t.frozen, "groups": groups,
            "leaves": [_leaf(t, k) for k in range(len(t.header))], "rows": rows}


def toc(sections: list[Section]) -> list[tuple[str, str]]:
    """(href, label) of every section heading and table of a page."""
    out = []
    for s in sections:
        if s.heading and s.id:
            out.append((f"#{s.id}", s.heading))
        out += [(f"#{t.id}", t.title) for t in s.tables if len(s.tables) > 1]
    return out


def render_page(title: str, *, current: str, nav: list[tuple[str, str]],
                sections: list[Section], intro: Iterable[str] = (), banner: str = "",
                footer: Iterable[str] = (), vb_switch: bool = False) -> str:
    """One self-contained HTML page of the site."""
    tpl = _environment().get_template("page.html")
    return tpl.render(
        title=title, current=current, nav=list(nav), intro=list(intro), banner=banner,
        toc=toc(sections), vb_switch=vb_switch, footer=list(footer),
        sections=[{"heading": s.heading, "id": s.id, "paragraphs": s.paragraphs,
                   "bullets": s.bullets, "cards": s.cards,
                   "tables": [_view(t) for t in s.tables], "figures": s.figures}
                  for s in sections],
        css=Markup(templates.CSS), script=Markup(templates.SCRIPT))
