"""Where each dataset's tree comes from: a real root given by the user, or the built-in
synthetic dataset generated on first use into the cache; optionally with the test set capped to
its first N test identities (the rehearsal suite's capped evaluation)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from vibench.data import load_dataset
from vibench.data.records import DatasetIndex
from vibench.data.synth import ensure_synthetic
from vibench.errors import VibenchError, unknown_name
from vibench.store.identity import real_data_id, synthetic_data_id

DATASETS = ("sysu", "regdb", "llcm")
#: folder names accepted below a --data-root that holds several datasets
_FOLDER_NAMES = {
    "sysu": ("sysu", "SYSU-MM01", "SYSU_MM01", "sysu-mm01"),
    "regdb": ("regdb", "RegDB"),
    "llcm": ("llcm", "LLCM"),
}


@dataclass(frozen=True)
class DataSources:
    """`roots` maps dataset -> real root; datasets without one use synthetic data."""

    roots: tuple[tuple[str, str], ...] = ()
    synthetic_scale: str = "tiny"
    synthetic_seed: int = 0
    #: keep only the first N test identities (ascending pid) of every split; None = all
    test_ids: int | None = None

    @classmethod
    def parse(cls, values: Sequence[str] | None, *, synthetic_scale: str = "tiny", synthetic_seed: int = 0,
              test_ids: int | None = None) -> "DataSources":
        """Parse ``--data-root`` values: ``DIR`` (holding SYSU-MM01/, RegDB/, LLCM/ or sysu/,
        regdb/, llcm/) or ``NAME=PATH`` for one dataset; may be repeated."""
        roots: dict[str, str] = {}
        for value in values or ():
            if "=" in value:
                name, path = value.split("=", 1)
                if name not in DATASETS:
                    raise unknown_name("dataset", name, DATASETS)
                root = Path(path).expanduser()
                if not root.is_dir():
                    raise VibenchError(f"--data-root {value}: {root} is not a directory")
                roots[name] = str(root.resolve())
                continue
            base = Path(value).expanduser()
            if not base.is_dir():
                raise VibenchError(f"--data-root {value}: not a directory")
            found = False
            for name, folders in _FOLDER_NAMES.items():
                for folder in folders:
                    if (base / folder).is_dir():
                        roots[name] = str((base / folder).resolve())
                        found = True
                        break
            if not found:
                raise VibenchError(
                    f"--data-root {value}: expected sub-folders named SYSU-MM01, RegDB or LLCM "
                    "(or sysu, regdb, llcm), or use NAME=PATH"
                )
        if test_ids is not None and test_ids < 1:
            raise VibenchError(f"test id cap {test_ids}: expected a positive number of identities")
        return cls(tuple(sorted(roots.items())), synthetic_scale, synthetic_seed, test_ids)

    def is_synthetic(self, dataset: str) -> bool:
        return dataset not in dict(self.roots)

    def root(self, dataset: str) -> Path:
        roots = dict(self.roots)
        if dataset in roots:
            return Path(roots[dataset])

        return Path(ensure_synthetic(dataset, scale=self.synthetic_scale, seed=self.synthetic_seed))

    def load(self, dataset: str) -> DatasetIndex:
        """The dataset's index, its test records capped to the first `test_ids` identities."""
        return cap_test_ids(load_dataset(dataset, self.root(dataset)), self.test_ids)

    def identity(self, dataset: str, index: Any = None) -> str:
        """The data-source id of a cell identity (vibench.store.identity): synthetic scale and
        seed (plus ``-test<N>`` with a test id cap), or the manifest hash of the real tree's
        (capped) index (`index`, loaded when not given)."""
        if self.is_synthetic(dataset):
            cap = f"-test{self.test_ids}" if self.test_ids is not None else ""
            return synthetic_data_id(self.synthetic_scale, self.synthetic_seed) + cap
        if index is None:
            index = self.load(dataset)
        return real_data_id(index.manifest_hash())

    def describe(self, dataset: str) -> dict[str, Any]:
        cap = {} if self.test_ids is None else {"test_ids": self.test_ids}
        if self.is_synthetic(dataset):
            return {"kind": "synthetic", "scale": self.synthetic_scale, "seed": self.synthetic_seed, **cap}
        return {"kind": "real", "root": dict(self.roots)[dataset], **cap}

    def to_dict(self) -> dict[str, Any]:
        return {"roots": dict(self.roots), "synthetic_scale": self.synthetic_scale, "synthetic_seed": self.synthetic_seed,
                "test_ids": self.test_ids}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSources":
        return cls(tuple(sorted(d["roots"].items())), d["synthetic_scale"], d["synthetic_seed"], d.get("test_ids"))


def cap_test_ids(index: DatasetIndex, test_ids: int | None) -> DatasetIndex:
    """`index` with every split's test records limited to its first `test_ids` identities
    (ascending pid); the training records are untouched. None returns `index` itself."""
    if test_ids is None:
        return index
    capped = {}
    for split, records in index.test_records.items():
        keep = set(sorted({r.pid for r in records})[:test_ids])
        capped[split] = tuple(r for r in records if r.pid in keep)
    return replace(index, test_records=capped)
