"""ae: autoencoders that compress handwritten digits (models, data, training, codec)."""
import os
import sys

# OpenMP threads that busy-wait collapse (measured 20-30x slower) when another process shares
# the two cores: the app's live training beside inference, tests beside a Streamlit server.
# Sleeping threads cost little when alone. Takes effect only if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS's threads (numpy's matrix products: the codec's integer decoder) spin the same way,
# and the decoder alternates small products with single-threaded range decoding: on the two
# shared cores, a 1,000-digit container of the feedforward rd-q1 (retired since) decoded at 11,300 digits/s with one thread and 840
# with two (python -m scripts.receiver_costs). Takes effect only if numpy is not imported yet.
_blas_threads_chosen = "OPENBLAS_NUM_THREADS" in os.environ
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if not _blas_threads_chosen and "numpy" in sys.modules:
    # Too late for the variable: numpy came first (the app imports pandas before any page) and
    # its OpenBLAS already runs a thread per core, whose spinning cost the server ~110 ms of CPU
    # a stroke on Draw, two thirds of it (scripts/profile_draw.py). threadpoolctl sets the count
    # in the loaded library; limits set outside a `with` block stay.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")

__version__ = "0.1.0"
