"""Entry point of the agent process: ``python -m kore_smtpda.run_agent``.

gevent patches the standard library before smtplib or socket are imported,
so the agent's SMTP sessions run concurrently in one thread.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from kore_smtpda.agent import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
