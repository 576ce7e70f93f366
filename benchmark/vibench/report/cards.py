"""The methods' fidelity cards as report tables (``methods.md`` and ``methods.html``).

A card lists every component, loss term and recipe item of a method with the paper's reference,
the code location and one status (:data:`vibench.engine.fidelity.STATUSES`); it is what lets a
reader judge how far a reproduced number can stand for the paper's.
"""
from __future__ import annotations

from dataclasses import dataclass

from vibench.errors import VibenchError
from vibench.report.tables import Cell, DisplayTable

CARDS_PAGE = "methods.html"
INTRO = ("Each method's fidelity card: every component, loss term and recipe item of its paper "
         "config, where the paper states it, where vibench implements it, and whether vibench "
         "follows the paper as written, follows the official code where the paper is silent, "
         "guesses, or deviates (with why). Variants are released-code behaviours kept as "
         "non-default configs.")


@dataclass
class CardSection:
    method: str
    summary: str
    table: DisplayTable | None
    variants: list[str]
    error: str = ""


def card_sections(methods: list[str]) -> list[CardSection]:
    """One section per vibench method; a card that cannot be read becomes a section naming the
    problem (the report goes on with the others)."""
    # lazy: reading a card resolves the paper config through the method's class (torch)
    from vibench.engine.fidelity import card_rows, read_card
    out = []
    for m in methods:
        try:
            card = read_card(m)
        except VibenchError as exc:
            out.append(CardSection(m, "no valid card", None, [], str(exc)))
            continue
        rows = [[Cell(r["item"]), Cell(r["kind"]), Cell(r["paper"]),
                 Cell(r["status_text"], None, f"st-{r['status']}", r["why"]), Cell(r["why"]),
                 Cell(r["code"], None, "code"), Cell(r["config"], None, "code")]
                for r in card_rows(card)]
        table = DisplayTable(f"card-{m}", f"{m}: fidelity card", ["Item", "Kind", "Paper", "Status", "Why",
                                                                    "Code", "Config keys"], rows,
                             caption=card.summary(), frozen=1)
        variants = [f"{v.name}: {v.what} ({' '.join(v.config)})" for v in card.variants]
        out.append(CardSection(m, card.summary(), table, variants))
    return out
