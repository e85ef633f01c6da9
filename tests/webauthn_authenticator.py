"""A software WebAuthn authenticator for HTTP tests: it answers the server's options as a
browser with a passkey would (``credential.toJSON()``), signing with a real P-256 key, so the
server's checks run on real signatures without a browser. Browser tests use Chromium's own
virtual authenticator; this one lets the HTTP tests forge what a browser would not send (a
counter gone backwards, another user's credential, no user verification).
"""

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_UP, _UV, _BE, _BS, _AT = 0x01, 0x04, 0x08, 0x10, 0x40


@dataclass
class Passkey:
    """One credential: its id, key pair, the user handle it was made for, and its counter."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    sign_count: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class Authenticator:
    """Makes passkeys and signs with them, for ``origin``."""

    origin: str
    user_verified: bool = True
    #: Added to every signature count (a counter that starts above zero).
    counter_step: int = 1
    passkeys: list[Passkey] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def _flags(self, *extra: int) -> int:
        flags = _UP | _BE | _BS
        if self.user_verified:
            flags |= _UV
        for value in extra:
            flags |= value
        return flags

    def create(self, options: dict[str, Any]) -> tuple[Passkey, dict[str, Any]]:
        """Answer ``navigator.credentials.create`` options: the new passkey and the JSON."""
        rp_id = options["rp"]["id"]
        passkey = Passkey(
            credential_id=os.urandom(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            user_handle=unb64url(options["user"]["id"]),
            rp_id=rp_id,
        )
        client_data = self._client_data("webauthn.create", options["challenge"])
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(_AT)])
            + struct.pack(">I", passkey.sign_count)
            + bytes(16)  # AAGUID
            + struct.pack(">H", len(passkey.credential_id))
            + passkey.credential_id
            + passkey.cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.passkeys.append(passkey)
        return passkey, {
            "id": b64url(passkey.credential_id),
            "rawId": b64url(passkey.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(self, options: dict[str, Any], passkey: Passkey | None = None) -> dict[str, Any]:
        """Answer ``navigator.credentials.get`` options with ``passkey`` (by default the first
        one the options allow, or the first of all for a passwordless request)."""
        if passkey is None:
            allowed = {unb64url(c["id"]) for c in options.get("allowCredentials") or []}
            passkey = next(p for p in self.passkeys if not allowed or p.credential_id in allowed)
        passkey.sign_count += self.counter_step
        client_data = self._client_data("webauthn.get", options["challenge"])
        auth_data = (
            hashlib.sha256(passkey.rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", passkey.sign_count)
        )
        signature = passkey.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(passkey.credential_id),
            "rawId": b64url(passkey.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(passkey.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
