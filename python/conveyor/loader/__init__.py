"""``conveyor.loader``: the DataLoader and what runs it.

- ``dataloader``: ``DataLoader``, torch's constructor and validation, picks a path per iterator;
- ``planner``: which transforms the engine runs (op descriptors) and the Python tail;
- ``native_path`` / ``engine``: the C++ engine's batches turned into the user's batches;
- ``generic_path`` / ``worker_threads``: any other dataset, with torch's semantics, in threads;
- ``process_workers``: torch's worker processes fed by conveyor's order (the engine runs in
  each worker for a conveyor dataset); ``fork_safety``: engines a forked worker inherited;
- ``worker_limits``: what worker threads may take from the training process;
- ``sampling``: the sample order (Python owns it: seeded, sharded, resumable);
- ``stats``: ``LoaderStats``, what ran and why.
"""

from conveyor.loader.dataloader import DataLoader
from conveyor.loader.stats import LoaderStats
from conveyor.loader.worker_threads import get_worker_info

__all__ = ["DataLoader", "LoaderStats", "get_worker_info"]
