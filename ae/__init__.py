"""ae: autoencoders that compress handwritten digits (models, data, training, codec)."""
import os

# OpenMP threads that busy-wait collapse (measured 20-30x slower) when another process shares
# the two cores: the app's live training beside inference, tests beside a Streamlit server.
# Sleeping threads cost little when alone. Takes effect only if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS's threads (numpy's matrix products: the codec's integer decoder) spin the same way,
# and the decoder alternates small products with single-threaded range decoding: on the two
# shared cores, a 1,000-digit container of the feedforward rd-q1 (retired since) decoded at 11,300 digits/s with one thread and 840
# with two (python -m scripts.receiver_costs). Takes effect only if numpy is not imported yet.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
