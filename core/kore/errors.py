"""Exceptions of the kernel."""

from .config import ConfigError  # noqa: F401  (re-exported)


class PluginMissing(AttributeError):
    """A ``kore`` name was used whose plugin is not installed."""

    def __init__(self, name, package):
        self.name = name
        self.package = package
        super().__init__(
            "kore.%s is provided by the plugin %s, which is not installed "
            "or not enabled: pip install %s (and check KORE_PLUGINS)"
            % (name, package, package))


class PluginLoadError(Exception):
    """A plugin failed to import or register."""


class AppLoadError(Exception):
    """The application could not be imported or configured."""
