"""kore-plugin-cron: ``kore.cron(schedule, command)``, crontab jobs run by
the master exactly once per tick.

Modules: ``schedule`` (crontab syntax, next run times), ``jobs`` (what the
app declared), ``scheduler`` (the master's loop), ``shell`` (shell jobs as
children of the master), ``worker`` (Python jobs in a worker), ``clock``
(the real clock or the test clock), ``cli`` (``korectl cron list``) and
``plugin`` (the hooks).  See docs/cron.md.
"""

__version__ = "0.1.0"
