"""The result store: the one owner of cell identity (:mod:`.identity`), the directory layout
and its writers (:mod:`.layout`), the schema version and migration on read (:mod:`.schema`),
the trial summary (:mod:`.summary`), the readers (:mod:`.read`), the completion manifest and verification
(:mod:`.manifest`, :mod:`.verify`) and the per-cell lock (:mod:`.lock`). See docs/ARCHITECTURE.md,
"Result store"."""
from vibench.store.identity import (STANDARD, Cell, config_label, config_name, data_label,
                                    real_data_id, synthetic_data_id)
from vibench.store.layout import CellDir, iter_cell_dirs, open_cell
from vibench.store.lock import CellLock
from vibench.store.read import (StoreScan, StoredCell, check_store_root, find_rankings,
                                incomplete_cells, iter_completed_cells, read_cell, scan_store)
from vibench.store.verify import CellCheck, Problem, check_cells, repair_targets, verify_cell
from vibench.store.format import SCHEMA_VERSION, finish_metrics_doc, metrics_doc
from vibench.store.summary import curve_summary, mean_cmc, summarize_trials, trial_record

__all__ = ["STANDARD", "Cell", "config_label", "config_name", "data_label", "real_data_id",
           "synthetic_data_id", "CellDir", "iter_cell_dirs", "open_cell", "CellLock", "StoreScan", "StoredCell",
           "check_store_root", "find_rankings", "incomplete_cells", "iter_completed_cells",
           "read_cell", "scan_store", "CellCheck", "Problem", "check_cells", "repair_targets",
           "verify_cell", "SCHEMA_VERSION", "finish_metrics_doc", "metrics_doc", "mean_cmc",
           "summarize_trials", "trial_record", "curve_summary"]
