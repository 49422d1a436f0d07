"""The state directory (``acme_root``): account and domain keys, certificates.

Only the master reads and writes it (Kore's keymgr root).  Layout::

    <acme_root>/                        mode 0700, as every folder in it
        accounts/<provider>/key.pem     the account key, 0600
        accounts/<provider>/account.json  the registration (its URL), 0600
        certificates/<host>/key.pem     the domain key, 0600
        certificates/<host>/fullchain.pem  leaf + intermediates, 0600

``<provider>`` is the directory URL's host and path made file-name safe, so
switching from a staging CA to production keeps both accounts.  Every file
is written to a temporary name (created 0600) and renamed into place, so a
crash never leaves half a key.
"""

import os
import re

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def provider_slug(url):
    rest = url.split("://", 1)[-1].strip("/")
    return _SAFE.sub("_", rest)[:120] or "provider"


def host_dir_name(host):
    host = host.lower()
    if not host or host in (".", "..") or "/" in host or "\\" in host:
        raise ValueError("bad host name %r" % host)
    return _SAFE.sub("_", host)


class Store:
    def __init__(self, root):
        self.root = os.path.abspath(root)

    # -- helpers ----------------------------------------------------------------

    def _mkdir(self, path):
        """Create ``path`` (the root or a folder in it) and every missing
        folder between, each 0700.  Not ``os.makedirs(path, 0o700)``: it
        gives intermediate folders (``accounts/``, ``certificates/``) the
        umask's mode."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        rel = os.path.relpath(path, self.root)
        if rel == ".":
            return
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise ValueError("%s is not inside %s" % (path, self.root))
        cur = self.root
        for part in rel.split(os.sep):
            cur = os.path.join(cur, part)
            try:
                os.mkdir(cur, 0o700)
            except FileExistsError:
                pass
            os.chmod(cur, 0o700)

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _write(self, path, data):
        self._mkdir(os.path.dirname(path))
        tmp = "%s.tmp%d" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def ensure(self):
        """Create the root (0700); raise OSError when it cannot be."""
        self._mkdir(self.root)

    # -- account ----------------------------------------------------------------

    def account_dir(self, provider):
        return os.path.join(self.root, "accounts", provider_slug(provider))

    def account_key_path(self, provider):
        return os.path.join(self.account_dir(provider), "key.pem")

    def account_key(self, provider):
        return self._read(self.account_key_path(provider))

    def save_account_key(self, provider, pem):
        self._write(self.account_key_path(provider), pem)

    def account(self, provider):
        data = self._read(os.path.join(self.account_dir(provider), "account.json"))
        return data.decode("utf-8") if data else None

    def save_account(self, provider, text):
        self._write(os.path.join(self.account_dir(provider), "account.json"),
                    text.encode("utf-8"))

    def forget_account(self, provider):
        try:
            os.unlink(os.path.join(self.account_dir(provider), "account.json"))
        except FileNotFoundError:
            pass

    # -- certificates -----------------------------------------------------------

    def cert_dir(self, host):
        return os.path.join(self.root, "certificates", host_dir_name(host))

    def chain_path(self, host):
        return os.path.join(self.cert_dir(host), "fullchain.pem")

    def key_path(self, host):
        return os.path.join(self.cert_dir(host), "key.pem")

    def domain_key(self, host):
        return self._read(self.key_path(host))

    def save_domain_key(self, host, pem):
        self._write(self.key_path(host), pem)

    def chain(self, host):
        return self._read(self.chain_path(host))

    def save_chain(self, host, pem):
        self._write(self.chain_path(host), pem)
