"""The workers: the Celery task, the pipeline of one message, the stack of components and patches."""

from gateway.shared.blas import one_blas_thread

# Before anything below imports numpy: see gateway.shared.blas.
one_blas_thread()
