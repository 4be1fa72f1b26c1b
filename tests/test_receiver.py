"""The receiving side of the shipped operating points: golden payloads and pixels, integer
decoder tables that are what a fresh export writes, constriction models that hold the integer
tables exactly, the same pixels in every process and thread count, and a receiver that never
imports PyTorch."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import constriction
import numpy as np
import pytest
import torch
from PIL import Image

from ae.codec import CodecError, PointCoder, categorical, coder_table, compress, decompress, get_coder
from ae.entropy import frequencies_from_pmf
from ae.integer_decoder import IntegerDecoder, export_tables, tables_path
from ae.metrics import psnr
from ae.registry import operating_points
from ae.weights import load_card, load_model

POINTS = [p.name for p in operating_points()]
shipped = pytest.mark.skipif(not POINTS, reason="no shipped operating points")

# For every shipped point: (bundled sample digit, its single-digit payload, sha256 of the decoded
# uint8 pixels). The payloads are the sender's (float encoder: stable on one machine, and in
# practice across machines); the pixels are the integer decoder's, the same on every machine.
GOLDEN = {
    "rd-q1": [
        (0, "f3ccc2e80e41cc8c51",
         "c8c7d4c7513fd6b44faf0c040d0838a55119cc5f6cc2e9aa81510c5d1f19490a"),
        (137, "feba59403cdf472a23",
         "f3d5348dcbebe831e408a899d13b5ab874e52dacc9d141c1dc0a00c5b373874d"),
        (555, "f0032c1b36457e8e",
         "2857b6366ff274508da68d731f35816d8ffda0e71a882a9ecc96922e9364576a"),
    ],
    "rd-q2": [
        (0, "e7e6a41389f99d4209f639368e7e",
         "674acf89e7f8ead74e1e51706a4ee1c23ef8d3d1894fd001b1720d52b36a5ff5"),
        (137, "e3de79269364b41391f3917c8d6848",
         "60864199a54a2ebaca8f598e4c80feedd98b41b0f033bec5a2f71c643fbfbb33"),
        (555, "e4f75d2ec52d178ac11120cbc662acb4",
         "d7e4c865fe97abef8a2f788a2f3ae019fa5603b586aba97248d200d9d7612c04"),
    ],
    "rd-q3": [
        (0, "d6919f9f37b57a5696d30f8f6904f59b578f8d5ea90ac9e888c473bc",
         "acc04ef9b6a862a1e95117c2b84971eab4ca5ba72bfc35830a0d0e9b3b5c12bd"),
        (137, "d3206ac7eb515af90cc5e45281b9881fd1bd7468fa810fb64b0886",
         "d6ebed751ffe1ca625462b137a5c93439ca1a506d61835ba7fbdcec59f5eb842"),
        (555, "ddf9898913d930013be19d7e5796c7e749596977a3160d4ebe3050312b84",
         "8c180f295554d6cf4ebf1a9e62da1723ef6d0924080345153ae7a8538ab09a21"),
    ],
    "rd-q4": [
        (0, "c7889c920b0852d27ec7788c7708b037fb2f540f676bc701a0a5f65c64f54558d953b240",
         "9c059152bc3d60739a18150f9a868c5a0f9eff6c2d67bb0a23a99ef9611b54e7"),
        (137, "c1636223d03c2f34eb850fce6ef30ce6b0c512066ad1c6bf93092965adcc4a422cd302",
         "fc39f037caf58756e0727af725c84d4e056ef86e5e6a01ef4394c9e0da580172"),
        (555, "c2b59ac0fa50e4ed59c2d86c1597c84b5d3192f69f184cfc7e251b6c6d715c522fc225e245b3",
         "489da4ca525cab72c2e4489e1cddfdbda86998c13ed08608a7e9a99b6c92a3fe"),
    ],
    "rd-q5": [  # rd-q2's latents (the same body start as rd-q2's payloads), then the residual
        (0, "83bda41389f99d4209f639368e7e27a5174faa18d80f9da427efb05860",
         "7ca22464a07347469f9a0ffd0335876c73cc6176cf2f4c6a5712b0a10ac8d4c5"),
        (137, "835a79269364b41391f3917c8d68486fa797038ad61b9c8f2aa9",
         "59e022a5ffc36e500798419595002aa526b29d8a3ee54e26d3cb4a566329ab3d"),
        (555, "8e705d2ec52d178ac11120cbc662acd35fd32069217ae13f65fd54bb2f98fd249f898b1712",
         "9e70451b8c433cffa3b84cd8762befa3ab533bd9a9a038bf36a5b09897435591"),
    ],
}


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_every_shipped_point_has_golden_payloads():
    assert sorted(GOLDEN) == sorted(POINTS)


@shipped
@pytest.mark.parametrize("point", POINTS)
def test_golden_payloads_decode_to_golden_pixels(point, sample):
    for index, payload, pixels in GOLDEN[point]:
        decoded = decompress(bytes.fromhex(payload))
        assert decoded.point == point and sha256(decoded.pixels) == pixels
        assert compress(sample.images[index], point).hex() == payload  # the sender still writes them


@shipped
@pytest.mark.parametrize("point", POINTS)
def test_shipped_integer_tables_are_a_fresh_export(point, tmp_path):
    weights = operating_points()[POINTS.index(point)].path
    card = load_card(weights)
    fresh = IntegerDecoder.from_layers(load_model(weights).decoder_layers()).to_bytes(card["sha256"])
    shipped_bytes = tables_path(weights).read_bytes()
    assert fresh == shipped_bytes, f"run `python -m ae export-integer {point}` and commit the file and its card"
    assert card["integer_decoder"] == {"file": tables_path(weights).name, "sha256": hashlib.sha256(fresh).hexdigest()}


@shipped
@pytest.mark.parametrize("point", POINTS)
def test_the_integer_decoder_keeps_the_float_decoders_quality(point, sample):
    """Within 0.01 dB of the float64 reference, every pixel within one level of it. (Pixels one
    level apart, on the sample: rd-q1 2.2%, rd-q2 0.8%, rd-q3 0.6%, rd-q4 0.4%; the blurrier the
    point, the more gray pixels sit near a level's threshold.)"""
    coder = get_coder(point)
    coder = getattr(coder, "base", coder)  # a refined point's decoder is its base point's
    symbols = coder.symbols(sample.images)
    ours = coder.images(symbols)
    reference = coder.model.decode_exact(torch.from_numpy(symbols))
    assert abs(psnr(ours, sample.images).mean().item() - psnr(reference, sample.images).mean().item()) < 0.01
    assert (ours - reference).abs().max() <= 1 / 255 + 1e-6 and (ours == reference).float().mean() > 0.97


@shipped
@pytest.mark.parametrize("point", POINTS)
def test_the_fingerprint_read_with_numpy_is_the_models(point):
    info = operating_points()[POINTS.index(point)]
    from_files = PointCoder.from_files(info)
    assert from_files._model is None  # read with numpy: PyTorch's model is not loaded
    assert PointCoder(load_model(info.path), info.id, point).fingerprint == from_files.fingerprint


def table_read_back(model, size: int) -> np.ndarray:
    """The fixed-point table inside a constriction model, read through the ANS decoder: with
    state 2**32 + q the decoder's quantile is q (the low 24 bits), and it decodes the symbol
    whose interval holds q. Each symbol's left edge is the first q that decodes to it."""
    def symbol_at(q: int) -> int:
        return int(constriction.stream.stack.AnsCoder(np.array([q, 1], dtype=np.uint32)).decode(model))

    edges = [0]
    for k in range(1, size):  # bisect each edge: the decoded symbol grows with q
        lo, hi = edges[-1], 1 << 24
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if symbol_at(mid) < k else (lo, mid)
        edges.append(lo)
    return np.diff(np.array(edges + [1 << 24]))


@shipped
def test_the_coders_models_hold_the_integer_tables_exactly():
    crafted = frequencies_from_pmf(torch.tensor(np.stack([
        np.full(255, 1.0), np.eye(255)[127], np.exp(-np.abs(np.arange(255) - 100.0)), np.arange(255.0) ** 3])))
    coder = get_coder(POINTS[0])
    rows = [(coder.table[d], coder.categoricals[d]) for d in (0, coder.dims // 2, coder.dims - 1)]
    crafted_table = coder_table(crafted.numpy())
    rows += [(row, categorical(row)) for row in crafted_table]
    for table, model in rows:
        assert table.sum() == 1 << 24 and np.array_equal(table_read_back(model, 255), table)
    # Why the payloads kept their bytes: constriction's own quantisation of the frequencies
    # given as floats (the construction before the integer tables) is the same table.
    for frequencies, table in zip(crafted.numpy(), crafted_table):
        old = constriction.stream.model.Categorical(frequencies.astype(np.float64), perfect=False)
        assert np.array_equal(table_read_back(old, 255), table)


@shipped
def test_estimated_bits_are_the_information_content_under_the_coders_tables():
    coder = get_coder(POINTS[0])
    symbols = np.random.default_rng(0).integers(-3, 4, size=(5, coder.dims)).astype(np.int32)
    table = coder.table.astype(np.float64) / (1 << 24)
    expected = -np.log2(table[np.arange(coder.dims), symbols + 127]).sum(1)
    assert np.allclose(coder.estimated_bits(symbols), expected, rtol=0, atol=1e-9)


def fresh_process(script: str, threads: str, *args: str) -> str:
    env = os.environ | {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", script, *args], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout + "\n" + run.stderr


@shipped
@pytest.mark.slow  # starts a Python process
def test_the_receiver_never_imports_torch(tmp_path, sample):
    """`python -m ae decompress` of a single digit and of a container, in a fresh process:
    PyTorch is in neither sys.modules nor the import-time trace, and the PNGs hold the pixels."""
    single = tmp_path / "one.aez"
    single.write_bytes(bytes.fromhex(GOLDEN[POINTS[-1]][0][1]))
    container = tmp_path / "many.aez"
    container.write_bytes(compress(sample.images[:5], POINTS[0]))
    script = textwrap.dedent("""
        import sys
        from ae.cli import main
        assert main(["decompress", sys.argv[1], "-o", sys.argv[2]]) == 0
        assert main(["decompress", sys.argv[3], "-o", sys.argv[4]]) == 0
        print("torch imported:", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    out = fresh_process(script, "1", str(single), str(tmp_path / "one.png"), str(container), str(tmp_path / "many"))
    assert "torch imported: []" in out
    assert not [line for line in out.splitlines() if line.startswith("import time:") and "torch" in line]
    assert sha256(np.asarray(Image.open(tmp_path / "one.png"))) == GOLDEN[POINTS[-1]][0][2]
    pngs = sorted((tmp_path / "many").iterdir())
    pixels = np.stack([np.asarray(Image.open(p)) for p in pngs])
    assert np.array_equal(pixels, decompress(container.read_bytes()).pixels)


@shipped
@pytest.mark.slow  # starts two Python processes
def test_pixels_are_identical_across_processes_and_thread_counts(tmp_path, sample):
    payloads = {point: compress(sample.images[:300], point) for point in POINTS}
    for point, payload in payloads.items():
        (tmp_path / f"{point}.aez").write_bytes(payload)
    here = {point: sha256(decompress(payload).pixels) for point, payload in payloads.items()}
    script = textwrap.dedent("""
        import hashlib, json, sys
        from pathlib import Path
        from ae.codec import decompress
        out = {p.stem: hashlib.sha256(decompress(p.read_bytes()).pixels.tobytes()).hexdigest()
               for p in sorted(Path(sys.argv[1]).glob("*.aez"))}
        print("RESULT", json.dumps(out))
    """)
    for threads in ("1", "2"):
        line = next(x for x in fresh_process(script, threads, str(tmp_path)).splitlines() if x.startswith("RESULT"))
        assert json.loads(line[len("RESULT "):]) == here


@pytest.fixture
def shipped_folder(tmp_path, monkeypatch):
    import ae.registry

    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(ae.registry, "WEIGHTS_DIR", folder)
    return folder


def test_missing_changed_or_stale_tables_are_refused(shipped_folder, sample):
    from ae.architectures import build_model
    from ae.models import ModelConfig
    from ae.weights import save_model, write_card

    def save(seed: int):
        torch.manual_seed(seed)
        model = build_model(ModelConfig(arch="rdae", latent_dim=8, hidden=64))
        model.prior.update()
        return save_model(model, shipped_folder / "tiny.safetensors", {"codec": {"id": 1, "label": "tiny"}})

    path = save(0)
    with pytest.raises(CodecError, match="no integer decoder .* export-integer tiny"):
        decompress(compress(sample.images[0], "tiny"))
    export_tables(path)
    payload = compress(sample.images[0], "tiny")
    assert len(decompress(payload).pixels) == 1
    tables = tables_path(path)
    good = tables.read_bytes()
    tables.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    write_card(path, load_card(path))  # a new card stamp: the point is loaded again
    with pytest.raises(CodecError, match="does not match the sha256"):
        decompress(payload)
    card = load_card(path)
    save(1)  # retrained, and its tables not exported again
    write_card(path, load_card(path) | {"integer_decoder": card["integer_decoder"]})
    tables.write_bytes(good)
    with pytest.raises(CodecError, match="made from other weights"):
        decompress(compress(sample.images[0], "tiny"))
