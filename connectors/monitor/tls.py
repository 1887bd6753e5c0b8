"""TLS certificate facts of a wss relay: who it claims to be, who vouches for it, until when.

The certificate is read even when it does not verify (expired, self-signed, wrong name): the facts
are worth recording precisely then, with the verification error beside them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from connectors.monitor.checks import describe


async def certificate_facts(
    host: str, port: int, addresses: Sequence[str], *, time_limit: float
) -> dict[str, Any]:
    """The `TlsCertificate` record of the relay at `host:port`, reached at a checked address."""
    if not addresses:
        return _facts(None, "no address to connect to")
    address = addresses[0]
    error: str | None = None
    try:
        der = await _peer_certificate(host, address, port, ssl.create_default_context(), time_limit)
    except ssl.SSLCertVerificationError as exc:
        error = f"certificate does not verify: {exc.verify_message or exc.reason}"
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        try:
            der = await _peer_certificate(host, address, port, unverified, time_limit)
        except (OSError, TimeoutError) as retry:
            return _facts(None, f"{error}; reading it anyway failed: {describe(retry)}")
    except TimeoutError:
        return _facts(None, f"no TLS handshake with {address}:{port} in {time_limit:g}s")
    except OSError as exc:
        return _facts(None, describe(exc))
    return _facts(der, error)


async def _peer_certificate(
    host: str, address: str, port: int, context: ssl.SSLContext, time_limit: float
) -> bytes | None:
    async with asyncio.timeout(time_limit):
        _, writer = await asyncio.open_connection(
            address, port, ssl=context, server_hostname=host, ssl_handshake_timeout=time_limit
        )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
    finally:
        writer.transport.abort()


def _facts(der: bytes | None, error: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "subject": None,
        "issuer": None,
        "not_before": None,
        "not_after": None,
        "subject_alt_names": [],
        "fingerprint_sha256": None,
        "error": error,
    }
    if der is None:
        facts["error"] = error or "the relay presented no certificate"
        return facts
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        facts["error"] = f"unreadable certificate: {exc}"
        return facts
    facts.update(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=int(certificate.not_valid_before_utc.timestamp() * 1000),
        not_after=int(certificate.not_valid_after_utc.timestamp() * 1000),
        subject_alt_names=_alt_names(certificate),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
    )
    return facts


def _alt_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME
        )
    except x509.ExtensionNotFound:
        return []
    names = extension.value
    if not isinstance(names, x509.SubjectAlternativeName):
        return []
    dns_names = names.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    return [*dns_names, *ips]
