"""The client side of SMART Backend Services: key pairs and signed client assertions.

The exchange itself never needs these; the demo, the CLI's ``token`` command, the tests
and the benchmarks act as clients with them.
"""

import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ALGORITHMS = ("RS384", "ES384")


def generate_key(alg: str, kid: str) -> tuple[bytes, dict[str, Any]]:
    """A new private key (PEM) and its public JWK."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    elif alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    else:
        raise ValueError(f"alg must be one of {ALGORITHMS}")
    jwk.update(kid=kid, alg=alg, use="sig")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, jwk


def make_assertion(client_id: str, private_pem: bytes, alg: str, kid: str, token_url: str,
                   *, now: float | None = None, lifetime: int = 240,
                   jti: str | None = None, extra: dict[str, Any] | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url,
              "exp": issued + lifetime, "iat": issued, "jti": jti or secrets.token_urlsafe(24)}
    claims.update(extra or {})
    return jwt.encode(claims, private_pem, algorithm=alg, headers={"kid": kid, "typ": "JWT"})
