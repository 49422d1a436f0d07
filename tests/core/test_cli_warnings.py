"""korectl warns about a korectl flag placed after APP, an unknown KORE_*
variable and an app that declares no route."""

from kore_testing import wait_for

APP = """
import kore

class App:
    def configure(self, args):
        kore.log(kore.LOG_INFO, "configure got " + repr(args))
        kore.server("default", ip="127.0.0.1", port="1", tls=False)
        d = kore.domain("*", attach="default")
        ROUTES

    def index(self, req):
        req.response(200, b"ok")

koreapp = App()
"""


def test_flag_after_app_env_typo_and_no_route(kore_server):
    srv = kore_server(APP.replace("ROUTES", "pass"), "--graceful-timeout", "5", "--", "-w", "7",
                      workers=1, env={"KORE_GRACEFUL_TIMEOT": "3", "KORE_PLUGINS": "http"})
    srv.wait_ready(1)
    log = srv.log()
    assert "'--graceful-timeout' comes after APP" in log
    assert "option graceful_timeout" in log and "before APP" in log
    # after '--' the app's own flags are not warned about
    assert "'-w' comes after APP" not in log
    assert "configure got ['kore', '--graceful-timeout', '5', '--', '-w', '7']" in log
    assert ("environment variable KORE_GRACEFUL_TIMEOT names no option: did you "
            "mean KORE_GRACEFUL_TIMEOUT (option graceful_timeout)?") in log
    assert "declares no route, mount or redirect" in log
    assert log.count("declares no route") == 1
    assert srv.stop() == 0


def test_no_warning_for_a_normal_start(kore_server):
    srv = kore_server(APP.replace("ROUTES", 'd.route("/", self.index, methods=["get"])'), workers=1,
                      env={"KORE_WORKERS": "1"})
    srv.wait_ready(1)
    log = srv.log()
    assert "comes after APP" not in log
    assert "names no option" not in log
    assert "declares no route" not in log
    assert srv.stop() == 0
