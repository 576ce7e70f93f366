"""`vibench run`: the method x protocol matrix as independent, resumable cells in a result
store, suites (smoke, ci, paper), regression checks and executors (local, Slurm)."""
