#!/usr/bin/env python3
"""Independent check of the ReplicationSec v1 published vectors (handshake.json, records.json).

Re-implements the wire format and key schedule from the documentation with Python's `cryptography` package
(pip install cryptography) and compares every byte. Usage: verify_vectors.py [VECTOR_DIR]
"""
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

RAW = (Encoding.Raw, PublicFormat.Raw)


def sha256(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


def hkdf_extract(salt, ikm):
    return hmac.new(salt if salt else b"\x00" * 32, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length=32):
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def aes_ctr(key, counter, data):
    block = struct.pack(">Q", counter) + b"\x00" * 8
    enc = Cipher(algorithms.AES(key), modes.CTR(block)).encryptor()
    return enc.update(data) + enc.finalize()


def hmac256(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def record_keys(traffic_secret):
    return hkdf_expand(traffic_secret, b"rsec1 enc"), hkdf_expand(traffic_secret, b"rsec1 mac")


def certificate(authority, party):
    """Encodes and signs a node certificate (CertificateFormat.md)."""
    authority_public = authority.public_key().public_bytes(*RAW)
    node_public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(party["signing_seed"])).public_key().public_bytes(*RAW)
    node_id = party["node_id"].encode()
    body = b"RSC1" + bytes([1, party["role"], 1, 0])
    body += struct.pack(">Qqq", party["serial"], party["not_before"], party["not_after"])
    body += sha256(authority_public) + struct.pack(">H", len(node_id)) + node_id + node_public
    return body + authority.sign(b"rsec1 certificate\x00" + body)


def frame(frame_type, body):
    return bytes([frame_type]) + struct.pack(">I", len(body)) + body


def check(label, expected_hex, actual):
    if bytes.fromhex(expected_hex) != actual:
        raise SystemExit(f"MISMATCH {label}:\n  published {expected_hex}\n  computed  {actual.hex()}")
    print(f"ok  {label} ({len(actual)} bytes)")


def verify_handshake(v):
    authority = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["authority_seed"]))
    authority_public = authority.public_key().public_bytes(*RAW)
    ini, res = v["initiator"], v["responder"]
    cert_i, cert_r = certificate(authority, ini), certificate(authority, res)
    check("initiator certificate", ini["certificate"], cert_i)
    check("responder certificate", res["certificate"], cert_r)
    # The authority signature verifies with the authority public key.
    authority.public_key().verify(cert_i[-64:], b"rsec1 certificate\x00" + cert_i[:-64])

    e_i = X25519PrivateKey.from_private_bytes(bytes.fromhex(ini["ephemeral_seed"]))
    e_r = X25519PrivateKey.from_private_bytes(bytes.fromhex(res["ephemeral_seed"]))
    offer = v["initiator_offer"]

    # ClientHello
    body = bytes([len(offer["versions"])] + offer["versions"])
    body += bytes([len(offer["suites"])]) + b"".join(struct.pack(">H", s) for s in offer["suites"])
    body += bytes([len(offer["orderings"])] + offer["orderings"]) + e_i.public_key().public_bytes(*RAW)
    prefix = bytes([0x01]) + struct.pack(">I", len(body) + 16) + body
    cookie = hmac256(sha256(b"rsec1 cookie", authority_public), prefix)[:16]
    client_hello = prefix + cookie
    check("client_hello", v["client_hello"], client_hello)

    # ServerHello: version 1, suite 1, ordering 0 (strict) chosen.
    h0 = sha256(b"rsec1 handshake")
    h1 = sha256(h0, client_hello)
    dh = e_r.exchange(e_i.public_key())
    assert dh != b"\x00" * 32
    payload_r_len = 2 + len(cert_r) + 64
    header = bytes([0x02]) + struct.pack(">I", 1 + 2 + 1 + 32 + payload_r_len + 32)
    header += bytes([1]) + struct.pack(">H", 1) + bytes([0]) + e_r.public_key().public_bytes(*RAW)
    h_ee = sha256(h1, header)
    ck = hkdf_extract(h_ee, dh)
    enc_r, mac_r = record_keys(hkdf_expand(ck, b"rsec1 hs r2i" + h_ee))
    enc_i, mac_i = record_keys(hkdf_expand(ck, b"rsec1 hs i2r" + h_ee))
    responder_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(res["signing_seed"]))
    sig_r = responder_key.sign(b"rsec1 responder signature\x00" + h_ee + cert_r)
    ct_r = aes_ctr(enc_r, 0, struct.pack(">H", len(cert_r)) + cert_r + sig_r)
    tag_r = hmac256(mac_r, header, ct_r)
    server_hello = header + ct_r + tag_r
    check("server_hello", v["server_hello"], server_hello)
    # Independently: decrypt the published ServerHello and verify the signature with the certified key.
    published = bytes.fromhex(v["server_hello"])
    plain = aes_ctr(enc_r, 0, published[len(header):-32])
    n = struct.unpack(">H", plain[:2])[0]
    Ed25519PublicKey.from_public_bytes(plain[2 + n - 32 - 64:2 + n - 64]).verify(plain[2 + n:], b"rsec1 responder signature\x00" + h_ee + plain[2:2 + n])
    h2 = sha256(h_ee, ct_r + tag_r)

    # ClientFinish
    initiator_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ini["signing_seed"]))
    sig_i = initiator_key.sign(b"rsec1 initiator signature\x00" + h2 + cert_i)
    ct_i = aes_ctr(enc_i, 0, struct.pack(">H", len(cert_i)) + cert_i + sig_i)
    finish_header = bytes([0x03]) + struct.pack(">I", len(ct_i) + 32)
    client_finish = finish_header + ct_i + hmac256(mac_i, finish_header, ct_i)
    check("client_finish", v["client_finish"], client_finish)

    h3 = sha256(h2, client_finish)
    check("transcript_hash", v["transcript_hash"], h3)
    master = hkdf_extract(h3, ck)
    check("traffic_secret_i2r", v["traffic_secret_i2r"], hkdf_expand(master, b"rsec1 ts i2r"))
    check("traffic_secret_r2i", v["traffic_secret_r2i"], hkdf_expand(master, b"rsec1 ts r2i"))
    return hkdf_expand(master, b"rsec1 ts i2r")


def seal(secret, record_type, epoch, counter, payload):
    enc, mac = record_keys(secret)
    header = bytes([record_type]) + struct.pack(">IIQ", 12 + len(payload) + 32, epoch, counter)
    ciphertext = aes_ctr(enc, counter, payload)
    return header + ciphertext + hmac256(mac, header, ciphertext)


def verify_records(v, expected_secret):
    secret = bytes.fromhex(v["traffic_secret"])
    if expected_secret is not None and secret != expected_secret:
        raise SystemExit("records.json traffic_secret is not the handshake's i2r secret")
    rekey_after = v["rekey_after_messages"]
    secrets = [secret]
    for _ in range(2):
        secrets.append(hkdf_expand(secrets[-1], b"rsec1 next"))
    for index, published in enumerate(v["epoch_traffic_secrets"]):
        check(f"epoch {index} traffic secret", published, secrets[index])
    epoch, under_key = 0, 0
    for counter, record in enumerate(v["records"]):
        if under_key >= rekey_after:
            epoch, under_key = epoch + 1, 0
        payload = bytes.fromhex(record["payload"])
        check(f"record {counter} (epoch {epoch})", record["frame"], seal(secrets[epoch], 0x17, epoch, counter, payload))
        under_key += 1
    if under_key >= rekey_after:
        epoch += 1
    check(f"close record (epoch {epoch})", v["close"], seal(secrets[epoch], 0x15, epoch, len(v["records"]), b""))
    if epoch < 2:
        raise SystemExit("records vector does not cross two rekeys")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(directory, "handshake.json")) as f:
        i2r = verify_handshake(json.load(f))
    with open(os.path.join(directory, "records.json")) as f:
        verify_records(json.load(f), i2r)
    print("all vectors verified")


if __name__ == "__main__":
    main()
