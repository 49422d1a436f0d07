"""The ``korectl`` entry point.

gevent's monkey-patching must happen before anything else is imported (the
plugins and the application included), so this module lives outside the
``kore`` package and patches first.
"""


def main(argv=None):
    from gevent import monkey
    monkey.patch_all()
    from kore.cli import main as _main
    return _main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
