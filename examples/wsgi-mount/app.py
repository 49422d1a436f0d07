"""A Flask application mounted under /flask next to a native route.

    pip install flask
    korectl run --bind 127.0.0.1:8888 examples/wsgi-mount/app.py
    curl http://127.0.0.1:8888/flask/hello/kore  http://127.0.0.1:8888/native
"""

from flask import Flask

import kore

flask_app = Flask(__name__)


@flask_app.route("/hello/<name>")
def hello(name):
    return {"hello": name}


kore.mount("/flask", flask_app)


@kore.route("/native", methods=["get"])
def native(req):
    req.response(200, b"native kore route\n")
