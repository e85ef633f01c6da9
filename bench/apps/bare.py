"""The ceiling: a bare Flask app whose /blogs returns a small constant page, no auth at all."""

from flask import Flask

PAGE = (
    "<!doctype html><title>Blog</title>"
    "<h2>Welcome to the Blog</h2><h3>Hi bench</h3><a href='/logout'>Logout Here</a>"
)

app = Flask(__name__)


@app.route("/blogs")
def blog() -> str:
    return PAGE
