"""Errors a user can cause and fix. The CLI and the app show their message, never a traceback."""


class AEError(Exception):
    """Base class: something the user can act on (a bad file, a missing dataset...)."""


class DatasetUnavailable(AEError):
    """The dataset files are not on disk and could not be downloaded."""


class WeightsError(AEError):
    """A weights file or its card is missing, corrupt or does not fit the model."""


class PreprocessError(AEError):
    """An image could not be turned into an MNIST-style digit."""


class NothingDrawn(PreprocessError):
    """The drawing or image holds no ink: there is no digit to process."""
