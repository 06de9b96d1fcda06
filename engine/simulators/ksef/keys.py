"""The KSeF simulator's keys: its two RSA-2048 encryption keys (KSeF tokens, and the
symmetric keys of sessions) in self-signed certificates, and its own certificate
authority, which issues the certificates companies log in with (XAdES).

A certificate names its company the way KSeF certificates do: ``organizationIdentifier``
``VATPL-<nip>`` (a company's seal); ``serialNumber`` ``TINPL-<nip>`` or ``VATPL-<nip>``
(a person acting for the company) is accepted as well.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOKEN_ENCRYPTION = "KsefTokenEncryption"
SYMMETRIC_KEY_ENCRYPTION = "SymmetricKeyEncryption"
USAGES = (TOKEN_ENCRYPTION, SYMMETRIC_KEY_ENCRYPTION)
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
NIP_PREFIXES = ("VATPL-", "TINPL-")
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
CA_NAME = "Symulator KSeF - CA"


class CertificateRefusedError(Exception):
    """Signals a certificate KSeF would not log in with; the message is KSeF's detail
    ("Niezaufany łańcuch certyfikatów", "Nieważny certyfikat", ...)."""


@dataclass(frozen=True)
class _EncryptionKey:
    usage: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def key_id(self) -> str:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()[:32]


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


class KeyRing:
    """Keys made when the simulator is made; they outlive ``reset`` (certificates issued
    stay valid). Read-only after construction, so safe to share between threads."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._encryption = {usage: self._encryption_key(usage) for usage in USAGES}
        self._ca_key = _rsa_key()
        ca_name = _name((NameOID.COMMON_NAME, CA_NAME), (NameOID.COUNTRY_NAME, "PL"))
        self._ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )

    def _encryption_key(self, usage: str) -> _EncryptionKey:
        key = _rsa_key()
        name = _name((NameOID.COMMON_NAME, f"Symulator KSeF - {usage}"),
                     (NameOID.COUNTRY_NAME, "PL"))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - timedelta(days=1))
            .not_valid_after(self._now + timedelta(days=730))
            .sign(key, hashes.SHA256())
        )
        return _EncryptionKey(usage, key, certificate)

    def public_key_certificates(self) -> list[dict[str, object]]:
        """What ``GET /v2/security/public-key-certificates`` lists: one entry per usage,
        the certificate as base64 DER."""
        listed: list[dict[str, object]] = []
        for usage, entry in self._encryption.items():
            der = entry.certificate.public_bytes(serialization.Encoding.DER)
            listed.append({
                "certificate": base64.b64encode(der).decode("ascii"),
                "certificateId": f"{entry.certificate.serial_number:x}"[:32],
                "publicKeyId": entry.key_id,
                "validFrom": entry.certificate.not_valid_before_utc.isoformat(),
                "validTo": entry.certificate.not_valid_after_utc.isoformat(),
                "usage": [usage],
            })
        return listed

    def decrypt(self, usage: str, data: bytes) -> bytes:
        """``data`` decrypted (RSA-OAEP, SHA-256) with the key for ``usage``.

        :raises ValueError: if it was not encrypted for that key.
        """
        return self._encryption[usage].key.decrypt(data, OAEP)

    def issue_certificate(self, nip: str, *, valid_days: int = 365) -> tuple[str, str]:
        """A certificate for ``nip`` issued by the simulator's CA and its private key,
        both PEM (the key PKCS#8, not encrypted)."""
        key = _rsa_key()
        subject = _name((NameOID.COMMON_NAME, f"Firma {nip} (symulator KSeF)"),
                        (NameOID.ORGANIZATION_NAME, f"Firma {nip}"),
                        (ORGANIZATION_IDENTIFIER, f"VATPL-{nip}"),
                        (NameOID.COUNTRY_NAME, "PL"))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - timedelta(days=1))
            .not_valid_after(self._now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
        return certificate_pem, key_pem

    def check_certificate(self, certificate: x509.Certificate, now: datetime) -> str:
        """The NIP ``certificate`` was issued for, if the simulator's CA issued it and it
        is valid at ``now``.

        :raises CertificateRefusedError: otherwise, with KSeF's detail.
        """
        if certificate.issuer != self._ca.subject:
            raise CertificateRefusedError("Niezaufany łańcuch certyfikatów")
        try:
            certificate.verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateRefusedError("Błąd weryfikacji łańcucha certyfikatów") from None
        if not (certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc):
            raise CertificateRefusedError("Nieważny certyfikat")
        nip = nip_of(certificate)
        if nip is None:
            raise CertificateRefusedError("Niepoprawny certyfikat")
        return nip


def nip_of(certificate: x509.Certificate) -> str | None:
    """The NIP a certificate's subject names (``VATPL-``/``TINPL-`` in
    organizationIdentifier or serialNumber), or None."""
    for oid in (ORGANIZATION_IDENTIFIER, NameOID.SERIAL_NUMBER):
        for attribute in certificate.subject.get_attributes_for_oid(oid):
            value = attribute.value if isinstance(attribute.value, str) else ""
            for prefix in NIP_PREFIXES:
                if value.startswith(prefix) and value[len(prefix):].isdigit():
                    return value[len(prefix):]
    return None
