"""kore-plugin-smtpda: ``kore.email()`` and an SMTP delivery agent.

``kore.email(subject, snd, rcpt)`` composes a message and ``send()`` writes
it to a spool directory; a delivery agent process, supervised by the master,
delivers it with Postfix's retry and TLS semantics.  See docs/smtpda.md.
"""

__all__ = ["Composer", "email", "enable_smtpda", "smtpda_server"]


def __getattr__(name):
    # lazy: importing the plugin (every korectl command does) must not pay
    # for the email package
    if name in ("Composer", "email"):
        from . import composer
        return getattr(composer, name)
    if name in ("enable_smtpda", "smtpda_server"):
        from . import settings
        return getattr(settings, name)
    raise AttributeError("module 'kore_smtpda' has no attribute '%s'" % name)
