"""ae: autoencoders that compress handwritten digits (models, data, training, codec)."""

__version__ = "0.1.0"
