"""Fidelity cards (vibench.engine.fidelity): parsing, checks against code and config, the
`vibench methods show` command, and every registered method's card."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibench.cli import main
from vibench.engine.fidelity import STATUSES, card_problems, parse_card, read_card
from vibench.errors import VibenchError
from vibench.registry import available_methods


def _item(**kw):
    base = {"item": "GeM pooling", "kind": "component", "paper": "§3.1", "code": "pkg/net.py:Net",
            "status": "as_written"}
    return {**base, **kw}


def test_parse_counts_and_summary_by_hand():
    card = parse_card("m", {"fidelity": [
        _item(), _item(item="batch", kind="recipe", status="guessed", why="not stated"),
        _item(item="lr", kind="recipe", status="guessed", why="AGW default"),
        _item(item="loss", kind="loss", status="deviates", why="bounded"),
    ]}, "meta.yaml")
    assert card.counts() == {"as_written": 1, "official_code": 0, "guessed": 2, "deviates": 1}
    assert card.summary() == "4 items: 1 as written, 2 guessed, 1 deviates"
    assert list(card.counts()) == list(STATUSES)


@pytest.mark.parametrize("entry, message", [
    (_item(status="guesed", why="x"), "status 'guesed' is not one of .* \\(did you mean 'guessed'\\?\\)"),
    (_item(status="guessed"), "status 'guessed' needs a 'why'"),
    (_item(kind="losses"), "kind 'losses' is not one of component, loss, recipe"),
    (_item(cofig=["a"]), "unknown key 'cofig' \\(did you mean 'config'\\?\\)"),
    (_item(paper=""), "'paper' is missing"),
    (_item(config=[1]), "'config' must be a string or a list of strings"),
    ("just text", "fidelity item 2 must be a mapping"),
])
def test_malformed_items_are_named(entry, message):
    with pytest.raises(VibenchError, match=message) as exc:
        parse_card("m", {"fidelity": [_item(), entry]}, "meta.yaml")
    assert "meta.yaml: fidelity item 2" in str(exc.value)


def test_missing_card_is_an_error():
    with pytest.raises(VibenchError, match="meta.yaml: 'fidelity' must be a non-empty list"):
        parse_card("m", {"guesses": []}, "meta.yaml")


def test_problems_against_code_and_config(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "net.py").write_text("class Net:\n    def forward(self):\n        pass\n")
    (tmp_path / "outside.py").write_text("")
    cfg = {"model": {"gem_p": 3.0}, "augment": {"visible": [{"op": "hflip"}]}}
    good = parse_card("m", {"fidelity": [
        _item(config=["model.gem_p", "augment.visible.0.op"]), _item(code="pkg/net.py:forward"),
        _item(code="pkg/net.py")]}, "meta.yaml")
    assert card_problems(good, tmp_path / "pkg" / "..", [cfg]) == []
    bad = parse_card("m", {"fidelity": [
        _item(code="pkg/nope.py"), _item(code="pkg/net.py:Missing"), _item(code="../x.py"),
        _item(config=["model.gem"])],
        "variants": [{"name": "released", "config": ["model.gem_q=1"], "what": "x"},
                     {"name": "file", "config": ["released.yaml"], "what": "y"}]}, "meta.yaml")
    problems = card_problems(bad, tmp_path, [cfg], tmp_path)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    for fragment in ("does not exist under", "defines no 'Missing'", "outside the source roots",
                     "config key 'model.gem' is not in the paper config",
                     "variant 'released': key 'model.gem_q' is not in the paper config",
                     "variant 'file': config file 'released.yaml' does not exist"):
        assert fragment in text


@pytest.mark.parametrize("method", available_methods())
def test_every_method_has_a_valid_card(method: str):
    card = read_card(method)  # raises with every problem listed
    kinds = {i.kind for i in card.items}
    assert kinds == {"component", "loss", "recipe"}, f"{method}: card covers {kinds}"
    assert len(card.items) >= 8


def test_methods_show_prints_the_card(capsys: pytest.CaptureFixture):
    assert main(["methods", "show", "agw", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    card = read_card("agw")
    assert data["summary"] == card.summary()
    assert [r["item"] for r in data["items"]] == [i.item for i in card.items]
    assert main(["methods", "show", "agw"]) == 0
    out = capsys.readouterr().out
    assert card.summary() in out and all(i.item in out for i in card.items)
    assert main(["methods", "show", "agx"]) == 2
    assert "did you mean 'agw'" in capsys.readouterr().err
