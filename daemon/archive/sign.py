"""The archive signed with the site's Ed25519 key, and checked again.

The signature covers the archive's canonical JSON (sorted keys, no spaces) without its
`signature` field. Ed25519 signatures are deterministic, so a closed seal's signed archive is
still the same bytes every time. `check` verifies the signature with the site's public key
(never the key named inside the archive), and, given the store, that the archive is exactly
what the store's records give now — every record in it is still in the ledger, unchanged
(`sealwatch audit verify` proves the ledger itself).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from daemon.audit import canonical, public_hex

Json = dict[str, Any]


UNSIGNED = ("signature", "proofs")  # the proofs prove themselves against the signed head


def _message(doc: Json) -> bytes:
    return canonical({k: v for k, v in doc.items() if k not in UNSIGNED}).encode()


def sign(doc: Json, key: Ed25519PrivateKey) -> Json:
    """The archive with its `signature` (alg, the signer's public key, the signature)."""
    signed = {k: v for k, v in doc.items() if k not in UNSIGNED}
    signed["signature"] = {
        "alg": "ed25519",
        "key": public_hex(key.public_key()),
        "sig": key.sign(_message(doc)).hex(),
    }
    return signed


def check(doc: Json, public_key: Ed25519PublicKey, rebuilt: Json | None = None) -> list[str]:
    """What is wrong with a signed archive (empty: it is genuine, and matches the store)."""
    problems = []
    sig = doc.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != "ed25519":
        return ["the archive is not signed"]
    if sig.get("key") != public_hex(public_key):
        problems.append("signed with another key than the site's")
    try:
        public_key.verify(bytes.fromhex(str(sig.get("sig"))), _message(doc))
    except (InvalidSignature, ValueError):
        problems.append("the signature does not match the content (edited after signing)")
    if rebuilt is not None:
        mine = {k: v for k, v in doc.items() if k not in UNSIGNED}
        theirs = {k: v for k, v in rebuilt.items() if k not in UNSIGNED}
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                problems.append(f"'{key}' differs from what the store's records give")
    return problems
