"""Suites: named, frozen selections of the matrix (which methods, protocols, configs, data).

* ``smoke``: every method on every protocol group, tiny configs on tiny synthetic data, the
  RegDB split 1 cell only and one imbalance variant per modality, within 15 minutes on 2 CPU cores.
* ``ci``: the regression subset (AGW on one protocol of each dataset plus a mixed-modal and an
  imbalance protocol) within 5 minutes on 2 CPU cores; `vibench check` compares it with the
  committed baseline.
* ``paper``: the paper configs on the real datasets (needs --data-root and a GPU), every
  trial and every RegDB split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vibench.errors import unknown_name


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    methods: str
    protocols: str
    config: str
    synthetic_scale: str | None  # None: real data required
    regdb_splits: tuple[int, ...] | None = None
    max_trials: int | None = None
    overrides: tuple[str, ...] = field(default=())
    budget_seconds: int | None = None
    untrained_reference: bool = False

    def describe(self) -> str:
        data = f"synthetic '{self.synthetic_scale}' data" if self.synthetic_scale else "real data (--data-root)"
        splits = "all RegDB splits" if self.regdb_splits is None else f"RegDB splits {list(self.regdb_splits)}"
        trials = "all gallery trials" if self.max_trials is None else f"the first {self.max_trials} gallery trials"
        budget = f"; budget {self.budget_seconds // 60} min on 2 CPU cores" if self.budget_seconds else ""
        extra = f"; overrides {list(self.overrides)}" if self.overrides else ""
        if self.untrained_reference:
            extra += "; untrained-model reference evaluated"
        return (f"{self.name}: {self.description}\n  methods: {self.methods}\n  protocols: {self.protocols}\n"
                f"  config: {self.config} on {data}; {splits}; {trials}{extra}{budget}")


SUITES: dict[str, Suite] = {
    "smoke": Suite(
        name="smoke",
        description="every method on every protocol group at tiny scale",
        methods="all",
        protocols="sysu,regdb,llcm,mixed,unimodal,sysu-imb-ir20,sysu-imb-vis20",
        config="tiny",
        synthetic_scale="tiny",
        regdb_splits=(1,),
        budget_seconds=15 * 60,
        untrained_reference=True,
    ),
    "ci": Suite(
        name="ci",
        description="the regression subset compared with results/baselines/ci.json",
        methods="agw",
        protocols="sysu-all-single,sysu-indoor-multi,regdb-v2t,regdb-t2v,llcm-i2v,sysu-mixid-i,sysu-imb-ir20",
        config="tiny",
        synthetic_scale="tiny",
        regdb_splits=(1,),
        budget_seconds=5 * 60,
    ),
    "paper": Suite(
        name="paper",
        description="paper configs on the real datasets (GPU)",
        methods="all",
        protocols="all",
        config="paper",
        synthetic_scale=None,
    ),
}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise unknown_name("suite", name, SUITES) from None
