"""What both sides of the codec need, in a module that imports neither PyTorch nor numpy: the
digit's size, a model's config (a weights card rebuilds the model from it), the architecture
names a card may use, and the latent alphabet. The sender's models (`ae.models`, `ae.rdae`,
`ae.entropy`) import these from here, and so does the receiver, which never imports torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # 784

# Every architecture a card may name (`ae.architectures.ARCHITECTURES` maps them to classes).
ARCHITECTURE_NAMES = ("ff", "cnn", "classifier", "rdae", "rdcnn", "rdhybrid")

# The latent alphabet of the codec's models and their integer tables (`ae.entropy`).
MAX_SYMBOL = 127  # latents are clamped to [-127, 127]: 255 symbols per dimension
ALPHABET = 2 * MAX_SYMBOL + 1
TABLE_BITS = 16  # frequencies of each table row sum to 2**16


@dataclass(frozen=True)
class ModelConfig:
    arch: str  # "ff", "cnn" or "classifier"
    latent_dim: int = 0  # ignored by the classifier
    hidden: int = 0  # ff: width of the hidden layers; classifier: width of the dense layer
    channels: tuple[int, ...] = ()  # cnn / classifier: conv channels, one max-pool after each

    def to_dict(self) -> dict:
        return asdict(self) | {"channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        d["channels"] = tuple(d.get("channels", ()))
        return cls(**d)
