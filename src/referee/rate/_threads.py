"""Keep BLAS single-threaded inside the rating code."""

from __future__ import annotations

import contextlib

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional at runtime, a declared dependency
    threadpool_limits = None


def single_thread_blas():
    """Context in which BLAS/LAPACK use one thread.

    The rating code makes many small LAPACK calls (100 x 100 solves). With a
    multi-threaded OpenBLAS on a busy machine (a judge model running, a build) each
    call waits for descheduled worker threads: measured on 2 loaded cores, 400
    batched 100 x 100 solves took 43 s with 2 BLAS threads and 0.13 s with one.
    """
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
