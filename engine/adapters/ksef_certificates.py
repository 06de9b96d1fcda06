"""Certificates for the XAdES login to KSeF: check that a certificate and a private key
(PEM) belong together, and take a password off a protected key before it is stored
(the engine encrypts it itself)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class KeyPairError(ValueError):
    """Signals a certificate or key that cannot be used; the message says why (one line,
    never the key)."""


def unprotected_key(key_pem: bytes, password: str | None) -> str:
    """The private key ``key_pem`` as unencrypted PKCS#8 PEM.

    :raises KeyPairError: if it is not a PEM key, or the password is wrong or missing.
    """
    try:
        key = serialization.load_pem_private_key(
            key_pem, password=None if password is None else password.encode())
    except TypeError:
        raise KeyPairError("the private key is protected: give its password "
                           "(--key-password-stdin)") from None
    except ValueError:
        raise KeyPairError("the private key is not a PEM key, or its password is wrong"
                           ) from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def check_key_pair(certificate_pem: str, private_key_pem: str) -> None:
    """:raises KeyPairError: unless both are PEM, the key is RSA or EC, and the
    certificate's public key is the key's."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        raise KeyPairError("the certificate is not a PEM X.509 certificate") from None
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyPairError("the private key must be RSA or EC (ECDSA)")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (certificate.public_key().public_bytes(serialization.Encoding.DER, public)
            != key.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise KeyPairError("the private key does not belong to the certificate")
