"""Python side of examples/cron/kore.conf (jobs in a conf file are shell
jobs; Python jobs are declared in code, here or in koreapp.configure)."""

import kore


class App:
    def configure(self, args):
        kore.cron("*/10 * * * *", self.report, name="report")

    def report(self):
        kore.log(kore.LOG_INFO, "report from worker %d" % kore.worker())


koreapp = App()
