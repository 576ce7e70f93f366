"""Every documentation reference in the repository resolves inside the repository.

Scanned: benchmark/, methods/, tests/, docs/, protocols/ and README.md (.py, .yaml, .yml, .md).
* ``docs/<file>.md`` with an optional ``#anchor`` (anywhere), and in docs/*.md the Markdown links
  ``](<file>.md#anchor)`` and ``](#anchor)``: the file must exist and the anchor must be a heading
  of that file (GitHub's slug) or an explicit ``<a id="...">``.
* References to the research notes that live outside the repository (the notes' "protocols.md" or
  "methods.md" followed by a section sign, their shared/research paths, a paper text file's
  section) must be gone: the facts belong in docs/.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCAN_DIRS = ("benchmark", "methods", "tests", "docs", "protocols")
SCAN_FILES = ("README.md",)
SUFFIXES = {".py", ".yaml", ".yml", ".md"}

SECTION = "\u00a7"
DOC_REF = re.compile(r"(?<![\w./-])docs/([\w.-]+\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\]\(([\w.-]+\.md)?(?:#([\w-]+))?\)")
NOTE_REF = re.compile(
    r"(?:protocols|methods)\.md\s*" + SECTION
    + r"|shared/research/(?:protocols|methods)\.md"
    + r"|\.txt\s*" + SECTION
)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
HTML_ID = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (word characters, spaces and
    hyphens kept), spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors a Markdown file defines: its headings' slugs (outside code fences; repeated
    slugs get -1, -2, ...) and explicit ``<a id=...>`` / ``<a name=...>`` targets."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        found.update(HTML_ID.findall(line))
        if fence:
            continue
        m = HEADING.match(line)
        if m:
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            found.add(s if n == 0 else f"{s}-{n}")
    return found


def scanned_files(root: Path) -> list[Path]:
    files = [root / f for f in SCAN_FILES if (root / f).is_file()]
    for d in SCAN_DIRS:
        if (root / d).is_dir():
            files += [p for p in sorted((root / d).rglob("*")) if p.is_file() and p.suffix in SUFFIXES]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


def problems(root: Path) -> list[str]:
    """One line per unresolved doc reference or remaining reference to a non-repo note."""
    cache: dict[Path, set[str] | None] = {}

    def check(src: Path, lineno: int, target: Path, anchor: str | None, shown: str) -> str | None:
        if target not in cache:
            cache[target] = anchors(target.read_text(encoding="utf-8")) if target.is_file() else None
        where = f"{src.relative_to(root)}:{lineno}"
        if cache[target] is None:
            return f"{where}: {shown}: no such file in the repository"
        if anchor and anchor not in cache[target]:
            return f"{where}: {shown}: no heading or anchor #{anchor} in {target.relative_to(root)}"
        return None

    out: list[str] = []
    for src in scanned_files(root):
        in_docs = src.parent == root / "docs"
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
            for m in NOTE_REF.finditer(line):
                out.append(f"{src.relative_to(root)}:{lineno}: {m.group(0)!r} cites a note outside "
                           "the repository; put the fact in docs/ and cite that")
            for m in DOC_REF.finditer(line):
                msg = check(src, lineno, root / "docs" / m.group(1), m.group(2), m.group(0))
                if msg:
                    out.append(msg)
            if in_docs:
                for m in MD_LINK.finditer(line):
                    if m.group(1) is None and m.group(2) is None:
                        continue
                    target = src if m.group(1) is None else src.parent / m.group(1)
                    msg = check(src, lineno, target, m.group(2), m.group(0))
                    if msg:
                        out.append(msg)
    return out


def test_every_doc_reference_resolves():
    found = problems(REPO)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("heading,want", [
    ("Reference arithmetic", "reference-arithmetic"),
    ("RegDB (`regdb`, splits 1..10)", "regdb-regdb-splits-110"),
    ("`sysu` (SYSU-MM01)", "sysu-sysu-mm01"),
    ("How it is fast (no sort)", "how-it-is-fast-no-sort"),
])
def test_slug_matches_github(heading, want):
    assert slug(heading) == want


def test_checker_catches_each_kind_of_broken_reference(tmp_path):
    """The scan reports a missing file, a missing anchor, a broken relative link and a note
    reference, and accepts headings, repeated headings and explicit anchors."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Title\n\n## Part one\n\n## Part one\n\n<a id=\"custom\"></a>\n\n```\n# not a heading\n```\n"
        "See [x](#part-one-1), [y](a.md#custom), [z](#not-a-heading), [w](b.md).\n",
        encoding="utf-8",
    )
    code = tmp_path / "benchmark"
    code.mkdir()
    (code / "m.py").write_text(
        '"""docs/a.md#part-one docs/a.md#custom docs/a.md#title\n'
        "docs/a.md#nope docs/missing.md protocols.md " + SECTION + "1.5 methods.md " + SECTION + "2\n"
        'paper.txt ' + SECTION + '3"""\n',
        encoding="utf-8",
    )
    found = problems(tmp_path)
    text = "\n".join(found)
    assert "#nope" in text and "docs/missing.md: no such file" in text
    assert "no heading or anchor #not-a-heading" in text and "](b.md): no such file" in text
    assert sum("cites a note outside" in f for f in found) == 3
    assert len(found) == 7, text
