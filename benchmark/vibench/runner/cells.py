"""Planning: which cells a request needs. A cell (vibench.store.identity) is (method, dataset,
training variant, split, seed, config name, resolved-config hash, data source).

A cell trains one model and evaluates it on every protocol planned for it. SYSU-MM01 and LLCM
cells have split 0 and evaluate the protocol's gallery trials (0..9) inside the cell; RegDB
trains one model per split, so each split 1..10 is its own cell evaluating that one trial.
Imbalance protocols are training variants: their cells train on the reduced training set and
evaluate the standard protocols named in the variant's ``evaluate_with``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from vibench.io import stable_hash
from vibench.protocols import get_protocol
from vibench.runner.datasources import DataSources
from vibench.store.identity import STANDARD, Cell, config_name

__all__ = ["STANDARD", "Cell", "CellPlan", "plan_cells", "Identify"]


@dataclass(frozen=True)
class CellPlan:
    """A cell plus what to evaluate in it: protocol name -> the trials to evaluate. `config` is
    what the engine loads (tiny, paper or a YAML path); the cell holds its name and hash."""

    cell: Cell
    protocols: tuple[tuple[str, tuple[int, ...]], ...]
    config: str = "tiny"
    overrides: tuple[str, ...] = field(default=())
    #: also evaluate the freshly initialised model (same seed) as a learnability reference
    untrained_reference: bool = False
    #: evaluate every N epochs during training into curve.json (not part of the identity: the
    #: RNG is restored after each evaluation, so the trained model is the same)
    eval_every: int | None = None
    #: --allow-random-init: a paper config may train from random weights (recorded in the spec)
    allow_random_init: bool = False

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def trials(self, protocol: str) -> tuple[int, ...]:
        return dict(self.protocols)[protocol]

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.to_dict(), "protocols": {n: list(t) for n, t in self.protocols},
                "config": self.config, "overrides": list(self.overrides),
                "untrained_reference": self.untrained_reference, "eval_every": self.eval_every,
                "allow_random_init": self.allow_random_init}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellPlan":
        return cls(Cell.from_dict(d["cell"]), tuple((n, tuple(t)) for n, t in d["protocols"].items()),
                   d["config"], tuple(d.get("overrides", ())), bool(d.get("untrained_reference", False)),
                   d.get("eval_every"), bool(d.get("allow_random_init", False)))


class Identify:
    """The identity parts of a cell that need loading: the resolved config's hash per (method,
    dataset) and the data-source id per dataset, each computed once per planning. `weights`
    (vibench.runner.weights.WeightChoices) adds the ``model.weights`` override of the cells whose
    backbone was given a file."""

    def __init__(self, config: str, overrides: Sequence[str], data: DataSources, weights: Any = None) -> None:
        self.config, self.overrides, self.data, self.weights = config, tuple(overrides), data, weights
        self._hashes: dict[tuple[str, str], str] = {}
        self._overrides: dict[tuple[str, str], tuple[str, ...]] = {}
        self._data: dict[str, str] = {}

    def overrides_for(self, method: str, dataset: str) -> tuple[str, ...]:
        """The overrides a (method, dataset) cell runs with: the request's plus its weight file's."""
        return self._overrides.get((method, dataset), self.overrides)

    def cell(self, method: str, dataset: str, variant: str, split: int, seed: int) -> Cell:
        # lazy: runtime imports torch; spawned workers import this module before sizing OpenMP
        from vibench.runner.runtime import load_method_config

        key = (method, dataset)
        if key not in self._hashes:
            cfg = load_method_config(method, self.config, dataset, self.overrides)
            extra = self.weights.overrides_for(cfg) if self.weights else ()
            if extra:
                cfg = load_method_config(method, self.config, dataset, self.overrides + extra)
            self._overrides[key] = self.overrides + tuple(extra)
            self._hashes[key] = stable_hash(cfg)
        if dataset not in self._data:
            self._data[dataset] = self.data.identity(dataset)
        return Cell(method, dataset, variant, split, seed, config_name(self.config), self._hashes[key],
                    self._data[dataset])


def plan_cells(
    methods: Sequence[str],
    protocols: Iterable[Any],
    *,
    seeds: Sequence[int] = (0,),
    config: str = "tiny",
    overrides: Sequence[str] = (),
    max_trials: int | None = None,
    regdb_splits: Sequence[int] | None = None,
    untrained_reference: bool = False,
    data: DataSources | None = None,
    weights: Any = None,
    allow_random_init: bool = False,
) -> list[CellPlan]:
    """Expand methods x protocols x seeds into cells.

    `protocols` are ProtocolSpec objects (evaluation or training kind). `max_trials` keeps the
    first N gallery trials of SYSU/LLCM protocols; `regdb_splits` restricts RegDB's split cells.
    Each cell's identity is complete: the config is resolved (and validated) and the data source
    identified (`data`, default: the built-in synthetic data) before anything runs. `weights`
    (vibench.runner.weights.WeightChoices) gives backbones their files (the caller checks every
    name was used, `WeightChoices.check_used`); `allow_random_init` lets paper configs train
    from random weights.
    """
    ident = Identify(config, overrides, data or DataSources(), weights)
    wanted: dict[Cell, dict[str, tuple[int, ...]]] = {}

    def add(cell: Cell, name: str, trials: tuple[int, ...]) -> None:
        slot = wanted.setdefault(cell, {})
        slot[name] = tuple(sorted(set(slot.get(name, ())) | set(trials)))

    for spec in protocols:
        if getattr(spec, "kind", "evaluation") == "training":
            targets = [get_protocol(n) for n in spec.evaluate_with]
            variant = spec.name
        else:
            targets = [spec]
            variant = STANDARD
        for target in targets:
            for method in methods:
                for seed in seeds:
                    if target.dataset == "regdb":
                        splits = [t for t in target.trials if regdb_splits is None or t in regdb_splits]
                        for split in splits:
                            add(ident.cell(method, target.dataset, variant, split, seed), target.name, (split,))
                    else:
                        trials = tuple(target.trials)
                        if max_trials is not None:
                            trials = trials[:max_trials]
                        add(ident.cell(method, target.dataset, variant, 0, seed), target.name, trials)
    return [
        CellPlan(cell, tuple(sorted(protos.items())), config, ident.overrides_for(cell.method, cell.dataset),
                 untrained_reference, allow_random_init=allow_random_init)
        for cell, protos in sorted(wanted.items())
    ]
