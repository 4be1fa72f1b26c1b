"""Format version 2's framing: a 2-byte single-digit header whose CRC-12 catches every changed
byte, version 1 payloads refused in words, point ids that do not fit refused."""
import numpy as np
import pytest

from ae import codec
from ae.codec import CodecError, compress, crc12, decompress, frame, get_coder, parse_header


def crc12_bit_by_bit(bits: list[int]) -> int:
    """The textbook shift register, one bit at a time: the reference for the table version."""
    reg = 0
    for bit in bits:
        feedback = (reg >> 11) ^ bit
        reg = (reg << 1) & 0xFFF
        if feedback:
            reg ^= codec.CRC12_POLY
    return reg


def bits_of(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff", bytes(range(40)), b"digits in a few bytes"])
def test_crc12_matches_the_bit_by_bit_register(data):
    for tail, length in ((0, 0), (0b1011, 4), (0b1, 1)):
        tail_bits = [(tail >> (length - 1 - i)) & 1 for i in range(length)]
        assert crc12(data, tail, length) == crc12_bit_by_bit(bits_of(data) + tail_bits)


def test_crc12_detects_every_burst_up_to_twelve_bits():
    message = bits_of(bytes(range(7, 30)))
    codeword = message + [(crc12_bit_by_bit(message) >> (11 - i)) & 1 for i in range(12)]
    rng = np.random.default_rng(0)
    for _ in range(2000):
        length = int(rng.integers(1, 13))
        start = int(rng.integers(0, len(codeword) - length + 1))
        pattern = [1] + list(rng.integers(0, 2, length - 2)) + [1] if length > 1 else [1]
        damaged = list(codeword)
        for i, flip in enumerate(pattern):
            damaged[start + i] ^= int(flip)
        body, check = damaged[:-12], damaged[-12:]
        assert crc12_bit_by_bit(body) != int("".join(map(str, check)), 2)


def test_a_single_digit_costs_two_header_bytes(sample):
    coder = get_coder("rd-q1")
    payload = compress(sample.images[0], coder)
    assert parse_header(payload) == (coder.id, False, 1, 2)
    assert payload[0] >> 4 == codec.SINGLE_CODE | coder.id


@pytest.mark.parametrize("point", ["rd-q1", "rd-q2", "rd-q3", "rd-q4", "rd-q5"])
def test_every_changed_byte_of_a_payload_is_refused(sample, point):
    for index in (0, 1, 2):
        payload = compress(sample.images[index], point)
        for pos in range(len(payload)):
            # the first byte takes every other value: those naming another shipped point are
            # checked against that point's fingerprint and then by the canonical re-encode
            values = range(256) if pos == 0 else (payload[pos] ^ 0x01, payload[pos] ^ 0x80, payload[pos] ^ 0xFF,
                                                  (payload[pos] + 77) % 256)
            for value in set(values) - {payload[pos]}:
                damaged = payload[:pos] + bytes([value]) + payload[pos + 1:]
                with pytest.raises(CodecError):
                    decompress(damaged)


def test_a_version_1_payload_is_refused_in_words(sample):
    coder = get_coder("rd-q1")
    v2 = compress(sample.images[0], coder)
    version_1_single = bytes([0x20 | 1, 0x12, 0x34]) + v2[2:]
    version_1_container = bytes([0x30 | 1, 5, 0, 0, 0, 0]) + v2[2:]
    for payload in (version_1_single, version_1_container):
        with pytest.raises(CodecError, match="format version 1"):
            decompress(payload)


# Real payloads of the sample's first digit by the feedforward points that convolutional ones replaced.
RETIRED_PAYLOADS = {
    "rd-q1": (1, "9ddecf7d7927539f4932"),
    "rd-q2": (2, "ae3fef661779608424beb31590f8f4b4a3366259cb"),
    "rd-q3": (3, "b033fe74d7df7757aef32a303f5b745165e75f47e49e171e4daf02fe931cd11efb"),
}


@pytest.mark.parametrize("name", sorted(RETIRED_PAYLOADS))
def test_a_retired_points_payload_is_refused_in_words(name):
    point_id, single_hex = RETIRED_PAYLOADS[name]
    old_single = bytes.fromhex(single_hex)
    old_container = bytes([0x40 | point_id, 2, 0, 0, 0, 0]) + old_single[2:]
    for payload in (old_single, old_container):
        with pytest.raises(CodecError, match=f"feedforward {name}.*no longer decodes"):
            decompress(payload)


def test_an_unknown_first_nibble_is_not_a_digit_payload():
    with pytest.raises(CodecError, match="Not a digit payload of format version 2"):
        decompress(bytes([0x10, 0, 0, 0]))


def test_a_point_id_that_does_not_fit_the_header_is_refused():
    coder = get_coder("rd-q1")
    with pytest.raises(CodecError, match="does not fit"):
        coder._set_tables(8, "rd-q8", {"prior.frequencies": coder.frequencies}, None)


def test_a_container_keeps_its_own_header(sample):
    coder = get_coder("rd-q2")
    payload = compress(sample.images[:5], coder)
    point_id, container, count, header_len = parse_header(payload)
    assert (point_id, container, count) == (coder.id, True, 5)
    assert payload[0] >> 4 == codec.CONTAINER_CODE
    assert frame(coder, payload[header_len:], 5, container=True) == payload
