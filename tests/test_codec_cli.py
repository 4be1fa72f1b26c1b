"""`python -m ae compress / decompress / benchmark / train-codec` with the shipped operating points
and the bundled sample: results on good input, clear errors and no partial files on bad input."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ae.architectures import ARCHITECTURES
from ae.cli import main
from ae.codec import compress, decompress, parse_header
from ae.rdae import RateDistortionAE
from ae.registry import operating_points
from ae.sample import sample_test_indices

pytestmark = pytest.mark.skipif(not operating_points(), reason="no shipped codec weights")


def write_png(path, digit):
    Image.fromarray((digit.numpy() * 255).round().astype("uint8"), mode="L").save(path)
    return path


def test_shipped_points_are_numbered_and_measured():
    points = operating_points()
    assert len({p.id for p in points}) == len(points) >= 3
    for p in points:
        assert issubclass(ARCHITECTURES[p.arch], RateDistortionAE) and p.label
        assert {"mean_bytes", "psnr", "accuracy"} <= set(p.metrics)


def test_compress_then_decompress_images_and_test_indices(tmp_path, sample, capsys):
    png = write_png(tmp_path / "three.png", sample.images[30, 0])
    idx = ",".join(str(i) for i in sample_test_indices()[:3])
    out = tmp_path / "digits.aez"
    assert main(["compress", str(png), "--test-indices", idx, "-o", str(out), "--quality", "1"]) == 0
    payload = out.read_bytes()
    assert f"({len(payload):,} bytes" in capsys.readouterr().out  # the size printed is the file's
    assert parse_header(payload)[1:3] == (True, 4)
    folder = tmp_path / "decoded"
    assert main(["decompress", str(out), "-o", str(folder)]) == 0
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"digit_{i:05d}.png" for i in range(4)]
    decoded = decompress(payload).images
    for f, img in zip(files, decoded):
        assert np.array_equal(np.asarray(Image.open(f)), (img[0].numpy() * 255).round().astype("uint8"))
    # The three test digits code exactly as the codec codes them directly.
    assert torch.equal(decoded[1:], decompress(compress(sample.images[:3], "rd-q1")).images)


def test_single_digit_to_png(tmp_path, sample):
    out, png = tmp_path / "one.aez", tmp_path / "one.png"
    assert main(["compress", str(write_png(tmp_path / "in.png", sample.images[5, 0])), "-o", str(out)]) == 0
    assert parse_header(out.read_bytes())[1] is False
    assert main(["decompress", str(out), "-o", str(png)]) == 0
    assert Image.open(png).size == (28, 28)


@pytest.mark.parametrize("argv, message", [
    (["compress", "missing.png", "-o", "{tmp}/x.aez"], "Cannot read"),
    (["compress", "{tmp}/not_an_image.png", "-o", "{tmp}/x.aez"], "not an image"),
    (["compress", "-o", "{tmp}/x.aez"], "Nothing to compress"),
    (["compress", "--test-indices", "1,x", "-o", "{tmp}/x.aez"], "--test-indices"),
    (["compress", "--test-indices", "20000", "-o", "{tmp}/x.aez"], "0 to 9999"),
    (["compress", "{tmp}/blank.png", "-o", "{tmp}/x.aez"], "Nothing drawn"),
    (["compress", "--test-indices", "0", "--quality", "9", "-o", "{tmp}/x.aez"], "Unknown operating point"),
    (["decompress", "{tmp}/garbage.aez", "-o", "{tmp}/out"], "error:"),
    (["decompress", "{tmp}/nothing.aez", "-o", "{tmp}/out"], "Cannot read"),
    (["decompress", "{tmp}/empty.aez", "-o", "{tmp}/out.png"], "too short"),
    # Refused before any training: the header has three bits for the id.
    (["train-codec", "--sample", "--id", "8", "--target-bits", "40", "--out", "{tmp}/p.safetensors"], "ids 0-7"),
])
def test_bad_input_exits_2_with_a_message_and_writes_nothing(tmp_path, capsys, argv, message):
    (tmp_path / "not_an_image.png").write_bytes(b"hello")
    (tmp_path / "garbage.aez").write_bytes(bytes(range(40)))
    (tmp_path / "empty.aez").write_bytes(b"")
    Image.new("L", (28, 28), 255).save(tmp_path / "blank.png")
    before = set(tmp_path.iterdir())
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert set(tmp_path.iterdir()) == before  # no output, no temporary leftovers


def test_corrupt_payload_leaves_no_partial_output(tmp_path, sample, capsys):
    out = tmp_path / "many.aez"
    assert main(["compress", "--test-indices", ",".join(map(str, sample_test_indices()[:5])), "-o", str(out)]) == 0
    payload = bytearray(out.read_bytes())
    payload[-1] ^= 0x40
    out.write_bytes(bytes(payload))
    assert main(["decompress", str(out), "-o", str(tmp_path / "digits")]) == 2
    assert "Integrity check failed" in capsys.readouterr().err
    assert not (tmp_path / "digits").exists()
    good = tmp_path / "good.aez"
    main(["compress", "--test-indices", ",".join(map(str, sample_test_indices()[:5])), "-o", str(good)])
    assert main(["decompress", str(good), "-o", str(tmp_path / "one.png")]) == 2  # 5 digits, one PNG
    assert "give a folder" in capsys.readouterr().err and not (tmp_path / "one.png").exists()


@pytest.mark.slow  # runs every codec of the benchmark
def test_benchmark_runs_on_a_tiny_sample(tmp_path, capsys):
    out, html = tmp_path / "bench.json", tmp_path / "bench.html"
    assert main(["benchmark", "--sample", "--limit", "12", "--json", str(out), "--html", str(html),
                 "--latent-models"]) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["digits"] == 12 and "bundled sample" in doc["meta"]["data"]
    keys = {"method", "family", "label", "setting", "bytes_per_digit", "psnr", "ssim", "accuracy",
            "digits_per_s_batch", "ms_single"}
    assert all(keys <= set(r) for r in doc["results"])
    families = {r["family"] for r in doc["results"]}
    assert families == {"raw", "latent", "neural", "classic"}
    methods = {r["method"] for r in doc["results"]}
    assert {"png", "webp-lossless", "jpeg-q5", "webp-q5", "jpeg-xl-q20", "avif-q20"} <= methods
    # The codec's reported bytes are the real payload lengths of those 12 digits.
    from ae.sample import load_sample
    digits = load_sample().subset(12, seed=0).images
    for p in operating_points():
        row = next(r for r in doc["results"] if r["method"] == p.name)
        real = np.mean([len(compress(digits[i], p.name)) for i in range(12)])
        assert row["bytes_per_digit"] == pytest.approx(real)
        assert row["extra"]["estimated_bytes"] <= row["bytes_per_digit"]
    assert html.stat().st_size > 10_000 and "plotly" in html.read_text()[:100_000].lower()
    capsys.readouterr()
    assert main(["benchmark", "--show", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| method |") and len(table) == 2 + len(doc["results"])
    assert main(["benchmark", "--show", str(tmp_path / "missing.json")]) == 2


def test_train_codec_writes_a_point_with_tables(tmp_path):
    out = tmp_path / "mini.safetensors"
    assert main(["train-codec", "--sample", "--max-steps", "3", "--latent", "4", "--hidden", "32", "--quiet",
                 "--id", "3", "--target-bits", "20", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["codec"]["id"] == 3 and card["training"]["rate_target_bits"] == 20
    assert card["training_command"].startswith("python -m ae train-codec")
    assert card["integer_decoder"]["file"] == "mini.int.safetensors" and (tmp_path / "mini.int.safetensors").exists()
    from ae.weights import load_model
    model = load_model(out)
    assert model.prior.ready
    conv = tmp_path / "mini-conv.safetensors"
    assert main(["train-codec", "--sample", "--max-steps", "2", "--arch", "rdcnn", "--channels", "2", "4", "4",
                 "--latent", "4", "--hidden", "16", "--quiet", "--id", "2", "--target-bits", "20", "--out", str(conv)]) == 0
    model = load_model(conv)
    assert model.config.arch == "rdcnn" and model.config.channels == (2, 4, 4) and model.prior.ready
