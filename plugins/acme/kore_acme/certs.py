"""Keys and certificates, built with ``cryptography`` (pure functions).

* ``new_domain_key()`` / ``new_account_key()``: PEM private keys (EC P-256
  for certificates, RSA 2048 for the ACME account, certbot's default);
* ``placeholder(host)``: the self-signed certificate served until the real
  one is issued (Kore does the same);
* ``alpn_challenge(host, key_authorization)``: the RFC 8737 tls-alpn-01
  certificate (certbot's ``acme`` 3+ no longer builds it);
* ``renewal_time(...)``: when a certificate is renewed: ``acme_renew_before``
  before expiry when set, else at 2/3 of its lifetime, or 1/2 for
  lifetimes under 10 days (certbot's ``renewal_time`` rule);
* ``CertInfo``: what a PEM chain says (names, validity, serial) and whether a
  key belongs to it.
"""

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# id-pe-acmeIdentifier (RFC 8737 section 3)
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
SHORT_LIFETIME = datetime.timedelta(days=10)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_domain_key():
    """A fresh EC P-256 private key (PEM bytes) for a certificate."""
    return _pem_key(ec.generate_private_key(ec.SECP256R1()))


def new_account_key():
    """A fresh RSA 2048 private key (PEM bytes) for the ACME account."""
    return _pem_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def load_key(pem):
    return serialization.load_pem_private_key(pem, password=None)


def _self_signed(host, key, days, extensions=()):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = _now()
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]),
                        critical=False))
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    cert = b.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def placeholder(host):
    """(chain PEM, key PEM): a self-signed certificate for ``host``."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _self_signed(host, key, 30, [
        (x509.BasicConstraints(ca=False, path_length=None), True)])


def key_authorization(token, thumbprint_b64):
    """RFC 8555 section 8.1: token "." base64url(JWK thumbprint)."""
    return "%s.%s" % (token, thumbprint_b64)


def alpn_challenge(host, key_auth):
    """(cert PEM, key PEM) answering tls-alpn-01 for ``host`` (RFC 8737).

    The certificate names ``host`` in its subjectAltName and carries the
    critical acmeIdentifier extension whose value is the DER OCTET STRING
    of SHA-256(key authorization).
    """
    digest = hashlib.sha256(key_auth.encode("ascii")).digest()
    der = b"\x04\x20" + digest
    key = ec.generate_private_key(ec.SECP256R1())
    return _self_signed(host, key, 7, [
        (x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, der), True)])


class CertInfo:
    """The leaf of a PEM chain."""

    def __init__(self, chain_pem):
        certs = x509.load_pem_x509_certificates(chain_pem)
        if not certs:
            raise ValueError("no certificate in the PEM data")
        self.leaf = leaf = certs[0]
        self.chain = certs
        self.not_before = leaf.not_valid_before_utc
        self.not_after = leaf.not_valid_after_utc
        self.serial = leaf.serial_number
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            self.names = [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            self.names = []
        self.self_signed = leaf.issuer == leaf.subject

    @property
    def lifetime(self):
        return self.not_after - self.not_before

    def matches_key(self, key_pem):
        pub = load_key(key_pem).public_key()
        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return pub.public_bytes(*fmt) == self.leaf.public_key().public_bytes(*fmt)

    def covers(self, host):
        return host.lower() in self.names


def renewal_time(not_before, not_after, renew_before=None):
    """When to renew a certificate valid from ``not_before`` to ``not_after``.

    ``renew_before`` (a timedelta) picks ``not_after - renew_before``; it is
    ignored when it is not shorter than the lifetime (the certificate would
    be renewed again at once).  Otherwise 2/3 of the lifetime, or 1/2 when
    the lifetime is under 10 days (certbot's rule, also Let's Encrypt's
    advice for short-lived certificates).
    """
    lifetime = not_after - not_before
    if renew_before is not None and renew_before < lifetime:
        return not_after - renew_before
    if lifetime < SHORT_LIFETIME:
        return not_before + lifetime / 2
    return not_before + lifetime * 2 / 3
