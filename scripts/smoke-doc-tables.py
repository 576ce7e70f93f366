"""Print the two smoke-suite tables of docs/methods.md from a smoke store.

    .venv/bin/python scripts/smoke-doc-tables.py results/store

1. Test-time latency of each method's tiny config (params, GFLOPs, ms per image and per query),
   from the method's SYSU standard cell's model.json.
2. Trained vs untrained R1 / mAP (%) on the six cross-modal protocols, from the cells' metrics
   (their `untrained` part), RegDB on the split the smoke suite runs.

Reads through `vibench.store` (completed, verified cells only), so a damaged cell is left out and
named on stderr (`vibench.store.read.scan_store`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from vibench.store.read import scan_store

METHODS = ["agw", "pmt", "bit", "aminet", "tmpa", "mixer", "pmcm"]
LABELS = {"agw": "AGW", "pmt": "PMT", "bit": "BIT", "aminet": "AMINet", "tmpa": "TMPA", "mixer": "MixER", "pmcm": "PMCM"}
PROTOCOLS = ["sysu-all-single", "sysu-indoor-single", "regdb-v2t", "regdb-t2v", "llcm-v2i", "llcm-i2v"]


def main(root: Path) -> None:
    scan = scan_store(root)
    for note in scan.notes():
        print(f"note: {note}", file=sys.stderr)
    cells = [c for c in scan.cells if c.variant is None]
    by = {(c.method, c.dataset): c for c in cells}

    print("| method (tiny config) | params (registered) | GFLOPs / image | ms / image | ms / query |")
    print("|---|---|---|---|---|")
    for m in METHODS:
        cell = by.get((m, "sysu"))
        model = cell.model if cell else None
        if not model:
            print(f"| {LABELS[m]} | (no cell) | | | |")
            continue
        lat = model["latency"]
        print(f"| {LABELS[m]} | {model['params']['registered']:,} | {model['flops']['per_image'] / 1e9:.3f} | "
              f"{lat['ms_per_image']:.2f} | {lat['ms_per_query']:.2f} |")
    device = next(((c.model or {}).get("latency", {}).get("device") for c in cells), None)
    print(f"\nlatency device: {device}\n")

    print("| method | " + " | ".join(PROTOCOLS) + " |")
    print("|---" * (len(PROTOCOLS) + 1) + "|")
    for m in METHODS:
        row = []
        for proto in PROTOCOLS:
            cell = by.get((m, proto.split("-")[0]))
            doc = cell.metrics.get(proto) if cell else None
            if not doc or "untrained" not in doc:
                row.append("—")
                continue
            t, u = doc["summary"], doc["untrained"]["summary"]
            row.append(f"{100 * t['rank1']:.1f} / {100 * t['mAP']:.1f} vs {100 * u['rank1']:.1f} / {100 * u['mAP']:.1f}")
        print(f"| {LABELS[m]} | " + " | ".join(row) + " |")
    first = cells[0] if cells else None
    if first:
        print(f"\ncommit {first.commit}, hardware {first.hardware}, data {first.data_label}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/store"))
