"""Encoder-side latent refinement (ae/latent_refinement.py): refined payloads are ordinary
payloads, a refined digit never scores worse than the encoder's own symbols, and bad settings
get the codec's own one-line error. A tiny model trained on the bundled sample: no dataset."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from ae.codec import PointCoder, compress, decompress
from ae.errors import AEError
from ae.latent_refinement import MAX_STEPS, Refinement, RefinementError, exact_objective, refine_symbols, sga_round

from test_codec import tiny_model

LAM = 5.0


@pytest.fixture(scope="module")
def coder(sample):
    return PointCoder(tiny_model(sample, seed=1), point_id=1, name="tiny")


@pytest.fixture(scope="module")
def digits(sample):
    return sample.images[:24]


@pytest.fixture(scope="module")
def refined(coder, digits):
    return refine_symbols(coder, digits, Refinement(steps=30, lam=LAM))


def test_refined_single_payloads_decode_with_the_receiver(coder, digits, refined):
    for i in range(4):
        payload = compress(digits[i], coder, refinement=Refinement(steps=30, lam=LAM))
        decoded = decompress(payload, coders=[coder])  # canonical check included
        # A digit refined alone gets the symbols it gets in a batch (the same noise draws).
        assert np.array_equal(decoded.symbols[0], refined[i])
        assert np.array_equal(decoded.pixels[0], coder.pixels(refined[i:i + 1])[0])


@pytest.mark.parametrize("relaxation", ["ste-anneal", "sga"])
def test_every_relaxation_refines_into_payloads_the_receiver_decodes(coder, digits, relaxation):
    refinement = Refinement(steps=20, lam=LAM, relaxation=relaxation)
    symbols = refine_symbols(coder, digits, refinement)
    assert np.all(exact_objective(coder, symbols, digits, LAM)
                  <= exact_objective(coder, coder.symbols(digits), digits, LAM))
    payload = compress(digits, coder, refinement=refinement)
    assert np.array_equal(decompress(payload, coders=[coder]).symbols, symbols)


def test_refined_container_decodes_to_the_refined_symbols(coder, digits, refined):
    payload = compress(digits, coder, refinement=Refinement(steps=30, lam=LAM))
    assert np.array_equal(decompress(payload, coders=[coder]).symbols, refined)


def test_refinement_never_scores_worse_and_changes_something(coder, digits, refined):
    plain = coder.symbols(digits)
    before = exact_objective(coder, plain, digits, LAM)
    after = exact_objective(coder, refined, digits, LAM)
    assert np.all(after <= before)
    assert np.any(after < before - 1e-9)  # the method does find better symbols, not just keeps them
    assert not np.array_equal(refined, plain)


def test_refinement_is_deterministic_and_leaves_the_global_generator_alone(coder, digits, refined):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    again = refine_symbols(coder, digits, Refinement(steps=30, lam=LAM))
    assert np.array_equal(again, refined)
    assert torch.equal(torch.rand(1), expected_next)


def test_off_by_default_gives_the_encoders_symbols(coder, digits):
    assert np.array_equal(coder.symbols(digits, Refinement()), coder.symbols(digits))
    assert compress(digits[0], coder, refinement=Refinement(0)) == compress(digits[0], coder)


def test_sga_rounding_stays_between_floor_and_ceiling_and_hardens():
    torch.manual_seed(0)
    y = torch.tensor([-2.3, -0.5, 0.0, 0.2, 1.7, 3.0]).repeat(200, 1)
    soft = sga_round(y, tau=0.5)
    assert torch.all(soft >= torch.floor(y) - 1e-6) and torch.all(soft <= torch.floor(y) + 1 + 1e-6)
    hard = sga_round(y, tau=0.01)
    nearest = (hard - torch.round(hard)).abs() < 1e-3
    assert nearest.float().mean() > 0.97  # nearly every sample is a hard floor or ceiling


@pytest.mark.parametrize("steps,lam", [(-1, LAM), (MAX_STEPS + 1, LAM), (10**9, LAM), (2.5, LAM), (True, LAM),
                                       (10, None), (10, 0.0), (10, -3.0), (10, float("nan")), (10, float("inf")),
                                       (10, "5")])
def test_bad_settings_get_a_clear_error(steps, lam):
    with pytest.raises(RefinementError) as err:
        Refinement(steps, lam)
    assert isinstance(err.value, AEError) and str(err.value).startswith("Refinement")


def test_unknown_relaxation_gets_a_clear_error():
    with pytest.raises(RefinementError, match="relaxation must be one of"):
        Refinement(10, LAM, relaxation="gumbel")


@pytest.mark.parametrize("flags,message", [(["--refine-steps", "-3", "--refine-lambda", "5"], "between 0"),
                                           (["--refine-steps", "5000", "--refine-lambda", "5"], "between 0"),
                                           (["--refine-steps", "10"], "needs lambda"),
                                           (["--refine-steps", "10", "--refine-lambda", "5", "--refine-relaxation", "x"],
                                            "relaxation must be one of")])
def test_cli_refuses_bad_refinement_flags_without_a_traceback(tmp_path, flags, message):
    out = tmp_path / "x.aez"
    run = subprocess.run([sys.executable, "-m", "ae", "compress", "--test-indices", "0", "-o", str(out),
                          "--point", "rd-q1", *flags], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_cli_refined_payload_decodes_with_the_cli_receiver(tmp_path):
    out, png = tmp_path / "x.aez", tmp_path / "x.png"
    sent = subprocess.run([sys.executable, "-m", "ae", "compress", "--test-indices", "3", "-o", str(out),
                           "--point", "rd-q2", "--refine-steps", "10", "--refine-lambda", "3.5",
                           "--refine-relaxation", "sga"], capture_output=True, text=True)
    assert sent.returncode == 0, sent.stderr
    received = subprocess.run([sys.executable, "-m", "ae", "decompress", str(out), "-o", str(png)],
                              capture_output=True, text=True)
    assert received.returncode == 0, received.stderr
    assert png.stat().st_size > 0
