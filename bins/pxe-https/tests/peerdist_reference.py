#!/usr/bin/env python3
"""An independent computation of the Content Information pxe-https must send, written from
[MS-PCCRC] with Python's hashlib and hmac, for comparison byte for byte.

usage: peerdist_reference.py FILE PASSPHRASE_FILE 1|2   (writes the bytes to stdout)

Version 1.0: SHA-256, 32 MiB segments of 64 KiB blocks, HoD = SHA-256 of the block hashes,
Ks = SHA-256(passphrase), Kp = HMAC-SHA-256(Ks, HoD), little-endian.
Version 2.0: SHA-512 truncated to 32 bytes, 128 KiB segments (256 per chunk),
HoD = truncated SHA-512 of the segment, Ks = truncated SHA-512(passphrase),
Kp = HMAC-SHA-512(Ks, HoD) truncated, big-endian.
"""
import hashlib
import hmac
import struct
import sys

V1_SEGMENT, V1_BLOCK = 32 << 20, 64 << 10
V2_SEGMENT, V2_PER_CHUNK = 128 << 10, 256


def pieces(f, size):
    while True:
        piece = f.read(size)
        if not piece:
            return
        yield piece


def version_1(f, passphrase):
    ks = hashlib.sha256(passphrase).digest()
    segments = []
    for index, segment in enumerate(pieces(f, V1_SEGMENT)):
        blocks = [hashlib.sha256(segment[i:i + V1_BLOCK]).digest() for i in range(0, len(segment), V1_BLOCK)]
        hod = hashlib.sha256(b"".join(blocks)).digest()
        kp = hmac.new(ks, hod, hashlib.sha256).digest()
        segments.append((index * V1_SEGMENT, len(segment), hod, kp, blocks))
    out = struct.pack("<HIIII", 0x0100, 0x800C, 0, 0, len(segments))
    for offset, length, hod, kp, _ in segments:
        out += struct.pack("<QII", offset, length, V1_BLOCK) + hod + kp
    for *_, blocks in segments:
        out += struct.pack("<I", len(blocks)) + b"".join(blocks)
    return out


def version_2(f, passphrase):
    ks = hashlib.sha512(passphrase).digest()[:32]
    descriptions = []
    for segment in pieces(f, V2_SEGMENT):
        hod = hashlib.sha512(segment).digest()[:32]
        kp = hmac.new(ks, hod, hashlib.sha512).digest()[:32]
        descriptions.append(struct.pack(">I", len(segment)) + hod + kp)
    out = bytes([0x00, 0x02, 0x04]) + struct.pack(">QQIQ", 0, 0, 0, 0)
    for i in range(0, len(descriptions), V2_PER_CHUNK):
        chunk = b"".join(descriptions[i:i + V2_PER_CHUNK])
        out += struct.pack(">BI", 0x00, len(chunk)) + chunk
    return out


def main():
    path, passphrase_path, version = sys.argv[1:4]
    with open(passphrase_path, "rb") as f:
        passphrase = f.read()
    with open(path, "rb") as f:
        info = version_1(f, passphrase) if version == "1" else version_2(f, passphrase)
    sys.stdout.buffer.write(info)


if __name__ == "__main__":
    main()
