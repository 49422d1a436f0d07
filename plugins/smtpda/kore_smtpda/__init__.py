"""kore-plugin-smtpda: ``kore.email()`` and an SMTP delivery agent.

``kore.email(subject, snd, rcpt)`` composes a message and ``send()`` writes
it to a spool directory; a delivery agent process, supervised by the master,
delivers it with Postfix's retry and TLS semantics.  See docs/smtpda.md.
"""

from .composer import Composer, email
from .settings import enable_smtpda, smtpda_server

__all__ = ["Composer", "email", "enable_smtpda", "smtpda_server"]
