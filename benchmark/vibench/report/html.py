"""Static HTML pages (jinja2, autoescape on): sortable, filterable tables, inline CSS/JS only.

Only the two constants CSS and SCRIPT of ``vibench.report.templates`` are inserted unescaped
(as Markup); every string that comes from a result file or the registry goes through ``{{ }}``
with autoescaping."""
from __future__ import annotations

from dataclasses import dataclass
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


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader({"table.html": templates.TABLE, "page.html": templates.PAGE}),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _view(t: DisplayTable) -> dict[str, Any]:
    return {"id": t.id, "title": t.title, "caption": t.caption, "notes": t.notes,
            "header": t.header,
            "rows": [{"vb": any("vb" in c.cls.split() for c in r), "cells": r} for r in t.rows]}


def render_page(title: str, *, intro: Iterable[str] = (),
                sections: list[tuple[str, list[DisplayTable]]],
                nav: list[tuple[str, str]] = (), figures: list[Figure] = (),
                grids: list[Figure] = (), grid_notes: list[str] = (),
                synthetic: bool = False) -> str:
    """One self-contained HTML page."""
    tpl = _environment().get_template("page.html")
    return tpl.render(
        title=title, intro=list(intro), nav=list(nav), synthetic=synthetic,
        sections=[(h, [_view(t) for t in ts]) for h, ts in sections],
        figures=list(figures), grids=list(grids), grid_notes=list(grid_notes),
        css=Markup(templates.CSS), script=Markup(templates.SCRIPT))
