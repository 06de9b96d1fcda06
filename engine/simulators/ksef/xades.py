"""Reading a signed ``AuthTokenRequest`` (KSeF's XAdES login): the enveloped XML
signature must cover the whole document and verify with the certificate in its
``KeyInfo``; the XAdES ``SigningCertificate`` digest, if given, must name that
certificate. Whether KSeF trusts the certificate is the caller's question."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree  # type: ignore[import-untyped]

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
AUTH_NAMESPACES = ("http://ksef.mf.gov.pl/auth/token/2.0",
                   "http://ksef.mf.gov.pl/auth/token/2.1")
MAX_XML = 1024 * 1024


class XadesError(Exception):
    """Signals a login document that is not a signed AuthTokenRequest KSeF can read or
    whose signature does not verify; the message is one line."""


@dataclass(frozen=True)
class SignedAuthRequest:
    """What a verified AuthTokenRequest says, and who signed it."""

    challenge: str
    context_type: str
    context_value: str
    subject_identifier_type: str
    certificate: x509.Certificate


def safe_parser() -> etree.XMLParser:
    """A parser that loads no DTD, entity or network resource."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_blank_text=False)


def read_signed_auth_request(xml: bytes) -> SignedAuthRequest:
    """The request in ``xml`` once its signature verifies.

    :raises XadesError: if it is not one, or the signature does not verify.
    """
    if len(xml) > MAX_XML:
        raise XadesError("the document is too large")
    try:
        root = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as error:
        raise XadesError(f"the document is not well-formed XML ({error})") from None
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "AuthTokenRequest" or namespace not in AUTH_NAMESPACES:
        raise XadesError("expected an AuthTokenRequest document (" + " or ".join(
            AUTH_NAMESPACES) + ")")
    signatures = root.findall(f"{{{DS}}}Signature")
    if len(signatures) != 1:
        raise XadesError("expected exactly one enveloped ds:Signature in AuthTokenRequest")
    signature = signatures[0]
    certificate = _signing_certificate(signature)
    _check_references(signature)
    _verify(root, signature, certificate)
    _check_signing_certificate_digest(signature, certificate)
    challenge = (root.findtext(f"{{{namespace}}}Challenge") or "").strip()
    context = root.find(f"{{{namespace}}}ContextIdentifier")
    identifiers = [child for child in (context if context is not None else [])
                   if isinstance(child.tag, str)]
    if not challenge or len(identifiers) != 1:
        raise XadesError("AuthTokenRequest needs a Challenge and one ContextIdentifier")
    return SignedAuthRequest(
        challenge=challenge,
        context_type=etree.QName(identifiers[0]).localname,
        context_value=(identifiers[0].text or "").strip(),
        subject_identifier_type=(root.findtext(f"{{{namespace}}}SubjectIdentifierType")
                                 or "").strip(),
        certificate=certificate,
    )


def _signing_certificate(signature: etree._Element) -> x509.Certificate:
    text = signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not text:
        raise XadesError("the signature carries no X509Certificate in its KeyInfo")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))
    except ValueError:
        raise XadesError("the signature's X509Certificate cannot be read") from None


def _check_references(signature: etree._Element) -> None:
    """The signature must sign the whole document (a reference ``URI=""`` with the
    enveloped-signature transform), not only a part of it."""
    for reference in signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference"):
        transforms = [transform.get("Algorithm") for transform in reference.findall(
            f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        if reference.get("URI") == "" and xmlsec.constants.TransformEnveloped.href in transforms:
            return
    raise XadesError("the signature does not cover the whole document (no enveloped "
                     "reference URI=\"\")")


def _verify(root: etree._Element, signature: etree._Element,
            certificate: x509.Certificate) -> None:
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    try:
        xmlsec.tree.add_ids(root, ["Id"])
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem, None)
        context.verify(signature)
    except xmlsec.Error:
        raise XadesError("the XAdES signature does not verify (Nieprawidłowy podpis)") from None


def _check_signing_certificate_digest(signature: etree._Element,
                                      certificate: x509.Certificate) -> None:
    path = (f".//{{{XADES}}}SigningCertificate/{{{XADES}}}Cert/{{{XADES}}}CertDigest/"
            f"{{{DS}}}DigestValue")
    digest = signature.findtext(path)
    if digest is None:
        return
    der = certificate.public_bytes(serialization.Encoding.DER)
    expected = base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
    if digest.strip() != expected:
        raise XadesError("the XAdES SigningCertificate digest does not match the signing "
                         "certificate")
