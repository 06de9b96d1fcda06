"""A local KSeF 2.0 (Poland's national e-invoicing system) that the real ``ksef-client``
SDK works against unchanged (``soa simulate ksef``): one HTTP server on 127.0.0.1, the
API under ``/v2`` (the SDK's ``base_url`` is :attr:`KsefSimulator.url`), state in memory.

What is simulated, as KSeF 2.0 does it:

- ``GET /v2/security/public-key-certificates``: the simulator's own RSA-2048 keys in
  self-signed certificates, one for ``KsefTokenEncryption``, one for
  ``SymmetricKeyEncryption``;
- login with a KSeF token (RSA-OAEP SHA-256 of ``token|timestampMs``, the timestamp the
  challenge's) or with XAdES (an enveloped signature over the AuthTokenRequest, by a
  certificate the simulator's CA issued for the context NIP); ``GET /v2/auth/{ref}``
  answers 100 at the first poll, then 200 or the failure (415, 450, 460); redeeming
  (once) and refreshing tokens; every other endpoint wants the access token (401), and
  sees only its context NIP's sessions;
- online sessions for FA (3): the AES-256 key RSA-OAEP encrypted, invoices AES-256-CBC
  encrypted with hashes and sizes checked at once (400); processing in status 150 for
  ``processing_seconds``, then 450 (XSD of FA(3), bundled with the SDK), 410 (seller
  NIP not the context's), 440 (duplicate seller, kind and number; ``extensions`` name the
  original KSeF number and session), or 200 with a KSeF number whose CRC-8 the SDK
  validates; session and invoice status, failed invoices, pagination by
  ``x-continuation-token``; UPO of an invoice (by reference or KSeF number) and of a
  closed session;
- KSeF's error shapes (``exception.exceptionDetailList``; problem details for 401; 429
  with ``Retry-After``);
- faults (:class:`KsefFaults`, ``rate_limit``, the ``X-Sim-Fault`` header): latency,
  429, 503 before and 500 after the work, answers lost after the work, and the next N
  invoice uploads lost after they were stored.

What is not: batch sessions, invoice queries and downloads, permissions, KSeF token and
certificate management, Peppol, QR codes, limits endpoints; signed UPOs (the UPO has
KSeF's shape but no signature); contexts other than NIP; certificates from real
qualified CAs; exception codes other than 21405 are the simulator's own choice;
persistence (``POST /_sim/reset`` or a restart forgets everything but the keys).

Control endpoints (no auth, no faults): ``GET /_sim/state``, ``POST /_sim/tokens
{"nip"}``, ``POST /_sim/certificates {"nip"}``, ``POST /_sim/faults {...}``
(``GET`` reads them), ``POST /_sim/reset``.
"""

from __future__ import annotations

from engine.simulators.ksef.simulator import DEFAULT_PORT, KsefFaults, KsefSimulator
from engine.simulators.partners import SimulatorInputError, SimulatorPortError

__all__ = ["DEFAULT_PORT", "KsefFaults", "KsefSimulator", "SimulatorInputError",
           "SimulatorPortError"]
