"""kore-plugin-hello: a template for third-party plugins (docs/writing-plugins.md)."""

import kore
from kore import hookimpl
from kore.config import Option


@hookimpl
def kore_config_options(registry):
    # kore.config.hello_greeting, KORE_HELLO_GREETING and a korectl flag
    registry.add(Option("hello_greeting", "str", "hi", "what kore.hello() says",
                        flags=("--hello-greeting",), owner="kore-plugin-hello"))


@hookimpl
def kore_namespace():
    # names added to the kore module: apps call kore.hello()
    return {"hello": lambda: kore.config.hello_greeting}


@hookimpl
def kore_worker_init(worker):
    kore.log(kore.LOG_INFO, "hello plugin ready in worker %d" % worker.id)
