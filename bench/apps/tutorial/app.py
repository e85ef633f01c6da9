# The tutorial's main application file (the "full code" of section 2.5 of
# /work/shared/seed/flask-login-tutorial.txt), copied as written except for what stops it
# running on Flask 3:
#   - Flask 3 has no before_first_request: the tables are created at startup, in an app
#     context.
#   - The database URI comes from TUTORIAL_DATABASE_URI (the tutorial hard-codes
#     sqlite:///data.db, still the default) so the benchmark can use a temporary file.
# Everything else is the tutorial's: werkzeug password hashes, Flask-Login's cookie session,
# login.login_view = 'login', its three templates. Whitespace and quotes are as `ruff format`
# leaves them.
import os

from flask import Flask, redirect, render_template, request
from flask_login import current_user, login_required, login_user, logout_user
from models import UserModel, db, login

app = Flask(__name__)
app.secret_key = "xyz"

app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("TUTORIAL_DATABASE_URI", "sqlite:///data.db")
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False


db.init_app(app)
login.init_app(app)
login.login_view = "login"

with app.app_context():
    db.create_all()


@app.route("/blogs")
@login_required
def blog():
    return render_template("blog.html")


@app.route("/login", methods=["POST", "GET"])
def login():  # (the tutorial reuses the name of the LoginManager set up above)
    if current_user.is_authenticated:
        return redirect("/blogs")

    if request.method == "POST":
        email = request.form["email"]
        user = UserModel.query.filter_by(email=email).first()
        if user is not None and user.check_password(request.form["password"]):
            login_user(user)
            return redirect("/blogs")

    return render_template("login.html")


@app.route("/register", methods=["POST", "GET"])
def register():
    if current_user.is_authenticated:
        return redirect("/blogs")

    if request.method == "POST":
        email = request.form["email"]
        username = request.form["username"]
        password = request.form["password"]

        if UserModel.query.filter_by(email=email).first():
            return "Email already Present"

        user = UserModel(email=email, username=username)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return redirect("/login")
    return render_template("register.html")


@app.route("/logout")
def logout():
    logout_user()
    return redirect("/blogs")
