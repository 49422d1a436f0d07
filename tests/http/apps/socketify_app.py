# socketify.py's documented examples (its request/response page), unchanged,
# in one application file; run with: korectl run socketify_app.py
from datetime import datetime, timedelta

from socketify import App, AppListenOptions


def home(res, req):
    res.end("Hello World!")


def redirect(res, req):
    # status code is optional default is 302
    res.redirect("/redirected", 302)


def not_found(res, req):
    res.write_status(404).end("Not Found")


def ok(res, req):
    res.write_status("200 OK").end("OK")


def json(res, req):
    res.send({"Hello": "World!"})


def with_headers(res, req):
    res.send({"Hello": "World!"}, headers=(("X-Rate-Limit-Remaining", "10"),
                                           (b'Another-Headers', b'Value')))


def send_in_parts(res, req):
    # write and end accepts bytes and str or its try to dumps to an json
    res.write("I can")
    res.write(" send ")
    res.write("messages")
    res.end(" in parts!")


def user(res, req):
    if int(req.get_parameter(0)) == 1:
        return res.end("Hello user with id 1!")
    params = req.get_parameters()
    res.end("All params %s" % params)


def cookies(res, req):
    # cookies are written after end
    res.set_cookie(
        "session_id",
        "1234567890",
        {
            "path": "/",
            "httponly": True,
            "samesite": "None",
            "secure": True,
            "expires": datetime.utcnow() + timedelta(minutes=30),
        },
    )
    res.end("Your session_id cookie is: %s" % req.get_cookie("session_id"))


def queries(res, req):
    search = req.get_query("search")
    queries = req.get_queries()
    res.end("search=%s all=%s" % (search, sorted(queries.items())))


async def oops(res, req):
    raise RuntimeError("Oops!")


app = App()
app.get("/", home)
app.get("/redirect", redirect)
app.get("/not-found", not_found)
app.get("/ok", ok)
app.get("/json", json)
app.get("/with-headers", with_headers)
app.get("/parts", send_in_parts)
app.get("/user/:id", user)
app.get("/cookies", cookies)
app.get("/queries", queries)
app.get("/oops", oops)
router = app.router("/api")
router.get("/ping", lambda res, req: res.end("pong"))


@app.on_error
def on_error(error, res, req):
    # here you can log properly the error and do a pretty response to your clients
    if res != None:  # noqa: E711  (socketify's example)
        res.write_status(500)
        res.end("Sorry we did something wrong")


def ws_open(ws):
    ws.subscribe("room")
    ws.send("welcome", 1)


def ws_message(ws, message, opcode):
    ws.send(message, opcode)


app.ws("/ws", {"open": ws_open, "message": ws_message,
               "close": lambda ws, code, message: None})

app.listen(3000, lambda config: print("Listening on port http://localhost:%d now\n"
                                      % config.port))
app.run()
