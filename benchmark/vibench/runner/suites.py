"""Suites: named, frozen selections of the matrix (which methods, protocols, configs, data).

* ``smoke``: every method on every protocol group, tiny configs on tiny synthetic data, the
  RegDB split 1 cell only and one imbalance variant (infrared reduced to 20%), within 15 minutes
  on 2 CPU cores with ``--jobs 2`` (28 cells, 766 s; with a second variant per method, visible
  reduced to 20%, the 35 cells took 1147 s: docs/training.md, "Threads and parallel runs").
* ``ci``: the regression subset (AGW on one protocol of each dataset plus a mixed-modal and an
  imbalance protocol) within 5 minutes on 2 CPU cores; `vibench check` compares it with the
  committed baseline.
* ``paper``: the paper configs on the real datasets (needs --data-root and a GPU), every
  trial and every RegDB split.
* ``rehearsal``: every method's paper config (input size, batch composition, augmentation,
  optimizer and schedule) on synthetic data with the real datasets' identity splits
  (scale ``paper-shape``) for a few iterations, **from random initialisation on purpose**
  (``allow_random_init``), evaluated on a capped test set; it records seconds per iteration,
  images per second and peak memory per cell (docs/rehearsal.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vibench.errors import unknown_name

#: training iterations per stage of a rehearsal cell, and the test identities it evaluates
REHEARSAL_ITERATIONS = 2
REHEARSAL_TEST_IDS = 24
#: identities per batch of a rehearsal on the CPU (the paper's elsewhere)
REHEARSAL_CPU_IDS = 2


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
    #: extra overrides for some methods only: ((method, (key=value, ...)), ...)
    method_overrides: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    #: paper configs may train from random initialisation (the explicit switch of the weights
    #: check; recorded with each cell's training record as its "init")
    allow_random_init: bool = False
    #: evaluate on the first N test identities only (None = all)
    test_ids: int | None = None
    #: print the training-cost table (s/iteration, images/s, peak memory) after the run
    show_costs: bool = False
    #: overrides added only when the run's device is the CPU, for every method and per method
    #: (the rehearsal's smaller identity count per batch: a CPU host cannot hold every paper batch)
    cpu_overrides: tuple[str, ...] = field(default=())
    cpu_method_overrides: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def overrides_for(self, method: str) -> tuple[str, ...]:
        """The suite's overrides for `method`: the common ones, then the method's own."""
        return tuple(self.overrides) + dict(self.method_overrides).get(method, ())

    def describe(self) -> str:
        data = f"synthetic '{self.synthetic_scale}' data" if self.synthetic_scale else "real data (--data-root)"
        splits = "all RegDB splits" if self.regdb_splits is None else f"RegDB splits {list(self.regdb_splits)}"
        trials = "all gallery trials" if self.max_trials is None else f"the first {self.max_trials} gallery trials"
        budget = f"; budget {self.budget_seconds // 60} min on 2 CPU cores" if self.budget_seconds else ""
        extra = f"; overrides {list(self.overrides)}" if self.overrides else ""
        if self.cpu_overrides:
            extra += f"; on the CPU also {list(self.cpu_overrides)}"
        for method, items in self.method_overrides:
            extra += f"; {method} also {list(items)}"
        if self.test_ids is not None:
            extra += f"; test set capped to the first {self.test_ids} test ids"
        if self.allow_random_init:
            extra += "; trains from random initialisation (allowed explicitly)"
        if self.untrained_reference:
            extra += "; untrained-model reference evaluated"
        return (f"{self.name}: {self.description}\n  methods: {self.methods}\n  protocols: {self.protocols}\n"
                f"  config: {self.config} on {data}; {splits}; {trials}{extra}{budget}")


SUITES: dict[str, Suite] = {
    "smoke": Suite(
        name="smoke",
        description="every method on every protocol group at tiny scale",
        methods="all",
        protocols="sysu,regdb,llcm,mixed,unimodal,sysu-imb-ir20",
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
    "rehearsal": Suite(
        name="rehearsal",
        description=("paper configs at paper shapes (input size, batch, augmentation, optimizer) for "
                     f"{REHEARSAL_ITERATIONS} iterations per stage on synthetic data with the real identity "
                     "splits, from RANDOM initialisation (a shape/time/memory check, not a result); "
                     "records s/iteration, images/s and peak memory"),
        methods="all",
        # one cell per method: 21 cells (adding regdb-v2t and llcm-v2i) measured far over the 20-minute
        # budget on the shared 2-core machine (docs/rehearsal.md); add them with --protocols
        protocols="sysu-all-single",
        config="paper",
        synthetic_scale="paper-shape",
        regdb_splits=(1,),
        max_trials=1,
        overrides=(f"sampler.iterations={REHEARSAL_ITERATIONS}", "schedule.epochs=1", "model.init=random"),
        # BIT's two stages carry their own epoch counts
        method_overrides=(("bit", ("stages.0.epochs=1", "stages.1.epochs=1")),),
        # on the CPU, 2 identities per batch instead of the paper's 8 (MixER 10, BIT stage 2 4):
        # the images per identity and modality, input size, model, augmentation and optimizer stay
        # the paper's; at the paper's P, BIT's stage 2 and TMPA's 6B images need more than the
        # 24 GB of the 2-core machine (docs/rehearsal.md); the estimate scales s/iteration by
        # images per iteration. On CUDA the suite runs the paper's batch.
        cpu_overrides=(f"sampler.ids_per_batch={REHEARSAL_CPU_IDS}",),
        # BIT's refinement re-scores the top 10 instead of 50 candidates per query on the CPU (the
        # decoder over 50 pairs per query took 9 of the rehearsal's 20 minutes)
        cpu_method_overrides=(("bit", (f"stages.1.sampler.ids_per_batch={REHEARSAL_CPU_IDS}", "bit.refine.k=10")),),
        budget_seconds=20 * 60,
        allow_random_init=True,
        test_ids=REHEARSAL_TEST_IDS,
        show_costs=True,
    ),
}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise unknown_name("suite", name, SUITES) from None
