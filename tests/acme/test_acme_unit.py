"""In-process tests of the ACME plugin's pure parts: renewal rule, durations,
RFC 8737 certificates, the state directory's modes, Retry-After, back-off,
in-memory certificate loading and the acme-tls/1 context choice."""

import datetime
import hashlib
import os
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509

from kore_acme import certs, client, memload, settings, store, workerside

D = datetime.timedelta
T0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def test_renewal_two_thirds_of_lifetime():
    # 90 days (Let's Encrypt): renew after 60 days, 30 days before expiry
    assert certs.renewal_time(T0, T0 + D(days=90)) == T0 + D(days=60)


def test_renewal_half_for_short_lifetimes():
    # under 10 days: at half of it (certbot's rule; Kore's fixed 5 days
    # would renew a 6-day certificate every hour)
    assert certs.renewal_time(T0, T0 + D(days=6)) == T0 + D(days=3)
    assert certs.renewal_time(T0, T0 + D(days=10)) == T0 + D(days=10) * 2 / 3


def test_renewal_explicit_renew_before():
    assert certs.renewal_time(T0, T0 + D(days=90), D(days=5)) == T0 + D(days=85)
    # not shorter than the lifetime: ignored (would renew in a loop)
    assert certs.renewal_time(T0, T0 + D(days=6), D(days=30)) == T0 + D(days=3)


def test_parse_duration():
    assert settings.parse_duration("30d") == D(days=30)
    assert settings.parse_duration("12h") == D(hours=12)
    assert settings.parse_duration("90m") == D(minutes=90)
    assert settings.parse_duration("45") == D(seconds=45)
    assert settings.parse_duration("") is None
    for bad in ("soon", "-3d", "0.0h"):
        with pytest.raises(ValueError):
            settings.parse_duration(bad)


def test_alpn_challenge_certificate_rfc8737():
    key_auth = certs.key_authorization("tok-en_1", "thumb")
    assert key_auth == "tok-en_1.thumb"
    cert_pem, key_pem = certs.alpn_challenge("example.test", key_auth)
    cert = x509.load_pem_x509_certificate(cert_pem)
    ext = cert.extensions.get_extension_for_oid(certs.ACME_IDENTIFIER_OID)
    assert ext.critical
    assert ext.value.value == b"\x04\x20" + hashlib.sha256(key_auth.encode()).digest()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["example.test"]
    assert certs.CertInfo(cert_pem).matches_key(key_pem)


def test_placeholder_is_self_signed_for_the_host():
    chain, key = certs.placeholder("kore.test")
    ci = certs.CertInfo(chain)
    assert ci.self_signed and ci.covers("KORE.test") and not ci.covers("other.test")
    assert ci.matches_key(key)
    assert not ci.matches_key(certs.new_domain_key())


@pytest.fixture
def usual_umask():
    """022: folders made with the umask's mode would be 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_store_files_are_0600_in_0700_dirs(tmp_path, usual_umask):
    s = store.Store(str(tmp_path / "state"))
    s.ensure()
    s.save_account_key("https://ca.test/dir", b"k")
    s.save_domain_key("kore.test", b"dk")
    s.save_chain("kore.test", b"chain")
    for path in (s.account_key_path("https://ca.test/dir"), s.key_path("kore.test"),
                 s.chain_path("kore.test")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # every folder, the intermediate ones too, whatever the umask
    for d in (s.root, os.path.join(s.root, "accounts"), s.account_dir("https://ca.test/dir"),
              os.path.join(s.root, "certificates"), s.cert_dir("kore.test")):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    assert s.domain_key("kore.test") == b"dk"
    assert s.chain("missing.test") is None
    # one account per directory URL: staging and production stay apart
    assert s.account_dir("https://a.test/dir") != s.account_dir("https://b.test/dir")
    with pytest.raises(ValueError):
        s.cert_dir("../etc")


def test_retry_after_parsing():
    assert client._retry_after_seconds("120") == 120
    assert client._retry_after_seconds(None) is None
    assert client._retry_after_seconds("garbage") is None
    when = datetime.datetime.now(datetime.timezone.utc) + D(seconds=300)
    secs = client._retry_after_seconds(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert 290 <= secs <= 301


def test_tls_alpn01_response_is_an_empty_object():
    r = client.TLSALPN01Response()
    assert r and r.json_dumps() == "{}"


def test_backoff_doubles_up_to_the_maximum(monkeypatch):
    from kore_acme import settings
    s = settings.Settings.__new__(settings.Settings)
    s.retry_min, s.retry_max = 60, 1000
    assert [s.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [60, 120, 240, 480, 960, 1000]


def _handshake(server_ctx, alpn=None, server_name="kore.test"):
    """A real TLS handshake over a socketpair; returns (cert DER, alpn)."""
    a, b = socket.socketpair()
    result = {}

    def serve():
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                result["alpn"] = s.selected_alpn_protocol()
        except (ssl.SSLError, OSError) as exc:
            result["error"] = exc

    t = threading.Thread(target=serve)
    t.start()
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if alpn:
        c.set_alpn_protocols(alpn)
    with c.wrap_socket(b, server_hostname=server_name) as s:
        der = s.getpeercert(True)
        got = s.selected_alpn_protocol()
    t.join(10)
    return der, got


def test_memload_replaces_the_certificate_of_a_live_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    first, key1 = certs.placeholder("kore.test")
    memload.load(ctx, first, key1)
    der1, _ = _handshake(ctx)
    second, key2 = certs.placeholder("kore.test")
    memload.load(ctx, second, key2)
    der2, _ = _handshake(ctx)
    assert x509.load_der_x509_certificate(der1).serial_number == \
        certs.CertInfo(first).serial
    assert x509.load_der_x509_certificate(der2).serial_number == \
        certs.CertInfo(second).serial
    with pytest.raises(ssl.SSLError):
        memload.load(ctx, second, key1)        # a key that does not match


def test_challenge_context_only_for_acme_tls_handshakes():
    cert, key = certs.alpn_challenge("kore.test", "t.k")
    ctx = workerside.challenge_context(cert, key)
    workerside.CHALLENGES["kore.test"] = ctx
    try:
        assert workerside.tls_context("kore.test", ["acme-tls/1"]) is ctx
        assert workerside.tls_context("kore.test", ["h2", "http/1.1"]) is None
        assert workerside.tls_context("kore.test", None) is None
        assert workerside.tls_context("other.test", ["acme-tls/1"]) is None
        der, alpn = _handshake(ctx, ["acme-tls/1"])
        assert alpn == "acme-tls/1"
        served = x509.load_der_x509_certificate(der)
        served.extensions.get_extension_for_oid(certs.ACME_IDENTIFIER_OID)
    finally:
        workerside.CHALLENGES.clear()


def test_stored_certificate_is_used_only_when_key_and_name_fit(tmp_path):
    """A crash between saving the new key and the new chain leaves a pair
    that does not match: it is not served, a new order is placed."""
    from kore_acme.manager import current
    s = store.Store(str(tmp_path))
    assert current(s, "kore.test") is None
    chain, key = certs.placeholder("kore.test")
    s.save_chain("kore.test", chain)
    s.save_domain_key("kore.test", key)
    ci, got_chain, got_key = current(s, "kore.test")
    assert got_chain == chain and ci.covers("kore.test")
    s.save_domain_key("kore.test", certs.new_domain_key())
    assert current(s, "kore.test") is None
    other_chain, other_key = certs.placeholder("other.test")
    s.save_chain("kore.test", other_chain)
    s.save_domain_key("kore.test", other_key)
    assert current(s, "kore.test") is None       # names another host
    s.save_chain("kore.test", b"not a certificate")
    assert current(s, "kore.test") is None


def test_client_hellos_are_peeked_at_only_for_tls_alpn_01_domains(monkeypatch):
    # peeking at each ClientHello costs every TLS connection something:
    # the plugin asks for it only when a tls-alpn-01 validation may come
    import types

    import pluggy
    from kore import runtime
    from kore_acme import plugin
    from kore_http import hookspecs, tls

    pm = pluggy.PluginManager("kore")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, "acme")
    monkeypatch.setattr(runtime, "hook", lambda name: getattr(pm.hook, name))
    monkeypatch.setattr(runtime, "call_reported",
                        lambda name, where=None, **kw: getattr(pm.hook, name)(**kw))
    monkeypatch.setattr(settings, "DOMAINS", {})
    monkeypatch.setattr(plugin, "_settings", types.SimpleNamespace(challenge="tls-alpn-01"))
    assert tls.wants_client_hello() is False          # installed, no acme domain
    settings.DOMAINS["example.test"] = object()
    assert tls.wants_client_hello() is True
    plugin._settings.challenge = "http-01"
    assert tls.wants_client_hello() is False


def test_option_defaults_are_kores():
    opts = {o.name: o for o in settings.options()}
    assert opts["acme_provider"].default == \
        "https://acme-v02.api.letsencrypt.org/directory"   # Kore's ACME_DEFAULT_PROVIDER
    assert opts["acme_challenge"].default == "tls-alpn-01"
    assert opts["acme_root"].default == ""                  # acme-state/ under the cwd


def _settings_with(monkeypatch, **values):
    from kore import runtime
    base = {o.name: o.default for o in settings.options()}
    base.update(values)
    monkeypatch.setattr(runtime, "option", lambda name: base[name])
    return settings.Settings()


def test_state_directory_defaults_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert _settings_with(monkeypatch).root == str(tmp_path / "acme-state")
    assert _settings_with(monkeypatch, acme_root="keys").root == str(tmp_path / "keys")


def test_ca_bundle_option_then_requests_then_ssl_cert_file(monkeypatch, tmp_path):
    files = {}
    for name in ("opt", "requests", "ssl"):
        files[name] = tmp_path / (name + ".pem")
        files[name].write_text("x")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert _settings_with(monkeypatch).verify is True          # the system's
    monkeypatch.setenv("SSL_CERT_FILE", str(files["ssl"]))
    assert _settings_with(monkeypatch).verify == str(files["ssl"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(files["requests"]))
    assert _settings_with(monkeypatch).verify == str(files["requests"])
    got = _settings_with(monkeypatch, acme_ca_bundle=str(files["opt"])).verify
    assert got == str(files["opt"])
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(settings.ConfigError, match=r"\$SSL_CERT_FILE: CA bundle"):
        _settings_with(monkeypatch)
