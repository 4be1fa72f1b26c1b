"""ae: autoencoders that compress handwritten digits (models, data, training, codec)."""
import os

# OpenMP threads that busy-wait collapse (measured 20-30x slower) when another process shares
# the two cores: the app's live training beside inference, tests beside a Streamlit server.
# Sleeping threads cost little when alone. Takes effect only if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
