"""The app the README runs: kore.hello() exists because kore-plugin-hello is
installed (korectl run --hello-greeting bonjour app.py)."""

import kore


def kore_worker_configure():
    kore.log(kore.LOG_INFO, "the hello plugin says: " + kore.hello())
