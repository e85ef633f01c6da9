# The tutorial's models.py ("Flask User Authentication - How to Setup User Login in Flask?",
# /work/shared/seed/flask-login-tutorial.txt, section 1.4), copied as written except:
#   - UserModel.query.get(int(id)) -> db.session.get(UserModel, int(id)) (Query.get is a
#     legacy API in SQLAlchemy 2).
# Whitespace and quotes are as `ruff format` leaves them.
from flask_login import LoginManager, UserMixin
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash, generate_password_hash

login = LoginManager()
db = SQLAlchemy()


class UserModel(UserMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(80), unique=True)
    username = db.Column(db.String(100))
    password_hash = db.Column(db.String())

    def set_password(self, password):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)


@login.user_loader
def load_user(id):
    return db.session.get(UserModel, int(id))
