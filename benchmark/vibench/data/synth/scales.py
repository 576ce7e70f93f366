"""The sizes of every synthetic dataset at every scale (tiny, small, paper, paper-shape).

`paper` matches the real datasets' identity and image counts (protocols.md sections 1.1, 2.1,
3.1; the LLCM per-split image counts are those of the LLCM paper); `tiny` is what the tests and
the default run use; `small` is a few times bigger than tiny. `paper-shape` has the real
identity splits and cameras at the paper's image size but caps the images per identity (one per
camera folder; RegDB two per modality; LLCM one or two cameras per id and modality): the
rehearsal suite's data, where classifier heads and the sampler see paper shapes and generation
stays within a few minutes (docs/synthetic.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Union

from vibench.errors import unknown_name

DATASETS: tuple[str, ...] = ("sysu", "regdb", "llcm")
SCALES: tuple[str, ...] = ("tiny", "small", "paper", "paper-shape")

Range = tuple[int, int]


@dataclass(frozen=True)
class SysuCounts:
    """SYSU-MM01: id split sizes, share of ids seen by the indoor cameras 1/2, images per folder.

    `*_total` (when set) fixes the exact number of RGB / IR images; folders then hold at least
    the lower bound of their range and the rest is spread over them at random."""

    n_train: int
    n_val: int
    n_test: int
    indoor_test: int
    indoor_fraction_train: float
    visible_per_folder: Range
    infrared_per_folder: Range
    visible_total: int | None = None
    infrared_total: int | None = None


@dataclass(frozen=True)
class RegdbCounts:
    """RegDB: ids, and visible / thermal images per id (image k of both is one capture)."""

    n_ids: int
    n_visible: int
    n_thermal: int
    n_trials: int = 10


@dataclass(frozen=True)
class LlcmCounts:
    """LLCM: id split sizes, cameras per id and modality, images per (id, camera) folder.

    `totals` (when set) fixes the exact image counts of train_vis, train_nir, test_vis, test_nir."""

    n_train: int
    n_test: int
    cams_per_id: Range
    per_folder: Range
    totals: tuple[int, int, int, int] | None = None


Counts = Union[SysuCounts, RegdbCounts, LlcmCounts]


@dataclass(frozen=True)
class ScaleSpec:
    """One (dataset, scale): stored image size (height x width) and the counts."""

    dataset: str
    scale: str
    height: int
    width: int
    counts: Counts
    jpeg_quality: int = 90

    def params(self) -> dict[str, object]:
        """JSON-able description (written into the cache marker)."""
        return {"dataset": self.dataset, "scale": self.scale, "height": self.height,
                "width": self.width, "jpeg_quality": self.jpeg_quality, "counts": asdict(self.counts)}


_SIZES: dict[str, tuple[int, int]] = {"tiny": (64, 32), "small": (128, 64), "paper": (288, 144),
                                     "paper-shape": (288, 144)}

_COUNTS: dict[str, dict[str, Counts]] = {
    "sysu": {
        "tiny": SysuCounts(24, 8, 28, indoor_test=20, indoor_fraction_train=0.6,
                           visible_per_folder=(3, 5), infrared_per_folder=(4, 6)),
        "small": SysuCounts(96, 32, 64, indoor_test=40, indoor_fraction_train=0.6,
                            visible_per_folder=(6, 10), infrared_per_folder=(6, 10)),
        # 296 train + 99 val + 96 test ids; 56 test ids in the indoor cameras; 30,071 RGB + 15,792 IR.
        "paper": SysuCounts(296, 99, 96, indoor_test=56, indoor_fraction_train=0.58,
                            visible_per_folder=(10, 10), infrared_per_folder=(10, 10),
                            visible_total=30071, infrared_total=15792),
        # the paper split (395 training ids = train + val, 96 test ids), one image per folder
        "paper-shape": SysuCounts(296, 99, 96, indoor_test=56, indoor_fraction_train=0.58,
                                  visible_per_folder=(1, 1), infrared_per_folder=(1, 1)),
    },
    "regdb": {
        "tiny": RegdbCounts(48, 5, 5),
        "small": RegdbCounts(128, 10, 10),
        "paper": RegdbCounts(412, 10, 10),
        "paper-shape": RegdbCounts(412, 2, 2),
    },
    "llcm": {
        "tiny": LlcmCounts(32, 24, cams_per_id=(2, 3), per_folder=(2, 4)),
        "small": LlcmCounts(128, 64, cams_per_id=(2, 4), per_folder=(3, 6)),
        # 713 train + 351 test ids; 46,767 images = train 16,946 VIS + 13,975 NIR,
        # test 8,680 VIS + 7,166 NIR.
        "paper": LlcmCounts(713, 351, cams_per_id=(2, 4), per_folder=(2, 2),
                            totals=(16946, 13975, 8680, 7166)),
        "paper-shape": LlcmCounts(713, 351, cams_per_id=(1, 2), per_folder=(1, 1)),
    },
}


def check_dataset(dataset: str) -> str:
    """`dataset` if it is a known synthetic dataset, else a VibenchError with a did-you-mean."""
    if dataset not in DATASETS:
        raise unknown_name("synthetic dataset", dataset, DATASETS)
    return dataset


def get_scale(dataset: str, scale: str) -> ScaleSpec:
    """The ScaleSpec of (dataset, scale); unknown names raise VibenchError."""
    check_dataset(dataset)
    if scale not in SCALES:
        raise unknown_name("synthetic scale", scale, SCALES)
    height, width = _SIZES[scale]
    return ScaleSpec(dataset, scale, height, width, _COUNTS[dataset][scale])
