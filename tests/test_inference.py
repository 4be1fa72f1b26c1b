"""ae.inference (chunked model runs) and ae.images (array conversions): small random models and
the bundled sample, no weights needed."""
import numpy as np
import pytest
import torch

from ae import inference
from ae.codec import CodecError, as_image_batch as codec_image_batch
from ae.images import (NotDigitImages, as_batch, as_digit_array, as_image_batch, batch_to_uint8, from_uint8,
                       to_uint8)
from ae.architectures import build_model
from ae.models import DEFAULT_CONFIGS


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model(DEFAULT_CONFIGS["cnn"]).eval()


def test_chunks_give_the_same_outputs_as_one_pass(cnn, sample):
    images = sample.images[:25]
    with torch.no_grad():
        z = cnn.encode(images)
        x_hat = cnn.decode(z)
    assert torch.allclose(inference.encode(cnn, images, chunk=7), z, atol=1e-6)
    assert torch.allclose(inference.decode(cnn, z, chunk=7), x_hat, atol=1e-6)
    assert torch.allclose(inference.reconstruct(cnn, images, chunk=7), x_hat, atol=1e-6)
    assert inference.decode(cnn, z[0].numpy()).shape == (1, 1, 28, 28)  # one latent, as an array


def test_classify_agrees_with_the_probabilities_and_turns_dropout_off(sample):
    torch.manual_seed(0)
    classifier = build_model(DEFAULT_CONFIGS["classifier"])  # in training mode, as built
    images = sample.images[:40]
    probs = inference.class_probabilities(classifier, images, chunk=16)
    assert probs.shape == (40, 10) and torch.allclose(probs.sum(1), torch.ones(40), atol=1e-5)
    assert torch.equal(inference.classify(classifier, images), probs.argmax(1))
    assert torch.equal(inference.class_probabilities(classifier, images), probs)  # no dropout: repeatable
    assert classifier.training  # put back in the mode it was in


def test_a_model_in_eval_mode_is_left_untouched(cnn, sample, monkeypatch):
    # The app's cached models are shared by every session: inference must not even rewrite their mode.
    monkeypatch.setattr(cnn, "train", lambda mode=True: pytest.fail("train() called on a shared model"))
    monkeypatch.setattr(cnn, "eval", lambda: pytest.fail("eval() called on a shared model"))
    inference.reconstruct(cnn, sample.images[:3])
    assert inference.device_of(cnn) == torch.device("cpu")


def test_digit_conversions(sample):
    digit = sample.images[7]  # (1,28,28) tensor
    a = as_digit_array(digit)
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert np.array_equal(as_digit_array(a[None, None] * 2), np.minimum(a * 2, 1))  # clipped into [0, 1]
    assert torch.equal(as_batch(a), torch.from_numpy(a)[None, None])
    pixels = to_uint8(digit)
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, np.round(a * 255))
    assert np.array_equal(batch_to_uint8(sample.images[:5])[3], to_uint8(sample.images[3]))
    assert np.array_equal(from_uint8(pixels), a)  # the sample is on the 8-bit grid
    assert torch.equal(from_uint8(torch.from_numpy(pixels)), torch.from_numpy(a))


def test_image_batches_refuse_what_is_not_digits():
    batch = as_image_batch(np.full((3, 28, 28), 255, dtype=np.uint8))
    assert batch.shape == (3, 1, 28, 28) and batch.dtype == torch.float32 and bool((batch == 1).all())
    one_nan = np.full((2, 28, 28), 0.5)
    one_nan[1, 3, 4] = np.nan
    for bad in ([[0.5]], np.zeros((28, 27)), np.zeros((0, 28, 28)), np.full((28, 28), 1.5), np.zeros((28, 28), int),
                np.full((28, 28), np.inf), np.full((28, 28), -np.inf), one_nan):
        with pytest.raises(NotDigitImages):
            as_image_batch(bad)
        with pytest.raises(CodecError):  # the codec says it in its own error
            codec_image_batch(bad)
