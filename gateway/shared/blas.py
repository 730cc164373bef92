"""One BLAS thread per process, decided before numpy loads its BLAS (the variables are read only then).

A worker runs at most one embedder forward pass at a time (``workers.memory.embedder``) beside an
event loop that needs the other core, and OpenBLAS's helper threads spin while they wait for work:
on two cores, the default (one thread per core) made each MiniLM pass cost 14 times the CPU of the
single-threaded one (145 ms against 10 ms for a short text, measured in ``bench/pipeline.py``'s
profile), and starved the loop. An operator who wants more sets the variables; ``setdefault`` keeps them.
"""

from __future__ import annotations

import os

__all__ = ["BLAS_THREAD_VARIABLES", "one_blas_thread"]

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
