"""``vibench run --eval-every N``: the test metrics during training, stored as a curve.

The benchmark's result is always the model after the last epoch (no checkpoint is chosen by
looking at the test set). The AGW, PMT and AMINet codes instead keep the epoch with the best
test-set rank-1/mAP; with ``--eval-every N`` the runner evaluates the planned protocols and trials
after every N-th epoch (and the last) and stores ``curve.json`` in the cell, so the report can
show that "best-on-test" number beside the last-epoch one, labelled as a selection on the test
set, and the gap between the two. The evaluation restores the RNG states afterwards (the trainer
does), so the trained model is the one a run without the flag trains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from vibench.runner import runtime
from vibench.store import CellDir, summarize_trials

CURVE_KEYS = ("rank1", "mAP", "mINP")


class CurveRecorder:
    """The trainer's ``on_epoch_end`` hook: evaluate after every `every`-th epoch and the last
    (`total_epochs`), appending a point to the cell's curve (written atomically each time)."""

    def __init__(self, cd: CellDir, every: int, total_epochs: int, specs: Mapping[str, Any],
                 lists: Mapping[tuple[str, int], Any], test_records: Sequence[Any], root: Path,
                 device: str) -> None:
        self.cd, self.every, self.total = cd, every, total_epochs
        self.specs, self.lists, self.records, self.root, self.device = specs, lists, test_records, root, device

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0 or epoch == self.total

    def __call__(self, inner: Any, point: Mapping[str, Any]) -> None:
        if not self.due(int(point["epoch"])):
            return
        trained = runtime.Trained(inner)
        feats = runtime.extract_table(trained, self.records, self.root, device=self.device)
        protocols: dict[str, Any] = {}
        for (name, t), pl in sorted(self.lists.items()):
            result, _ = trained.evaluate_trial(self.specs[name], pl, feats, self.device)
            protocols.setdefault(name, {})[str(t)] = result.to_dict()
        entry = {**dict(point), "protocols": {
            name: {"summary": {k: summarize_trials(trials)[k] for k in CURVE_KEYS},
                   "trials": {t: {"rank1": float(r["cmc"][0]), "mAP": float(r["mAP"]), "mINP": float(r["mINP"])}
                              for t, r in trials.items()}}
            for name, trials in protocols.items()}}
        doc = self.cd.read_curve() or {"every": self.every, "points": []}
        # a resumed run re-evaluates from its checkpoint's epoch on: later points are replaced
        doc["points"] = [p for p in doc["points"] if int(p["epoch"]) < int(point["epoch"])] + [entry]
        doc["every"] = self.every
        self.cd.write_curve(doc)

