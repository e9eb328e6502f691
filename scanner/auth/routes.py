"""/api/auth: accounts, sign-in and sessions (seed 001), plus the OAuth2 password form."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from marshmallow import RAISE

from .. import audit
from ..extensions import db
from ..rate_limits import limiter
from ..request_args import pagination
from . import services
from .access import current_token, current_user, login_required, refresh_token_required, roles_required
from .schemas import (
    LoggedOutSchema,
    LoginResponseSchema,
    LoginSchema,
    OAuth2PasswordSchema,
    OAuth2TokenSchema,
    ProfileSchema,
    ProfileUpdatedSchema,
    ProfileUpdateSchema,
    RegisteredSchema,
    RegisterSchema,
    TokenPairSchema,
    UserPageSchema,
    UserQueryArgsSchema,
    UserSchema,
)
from .tokens import RefreshTokenReused

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts, sign-in and sessions")

# Every body here is a few short strings; nothing larger is read or parsed.
MAX_BODY_BYTES = 16 * 1024

# Per client address, whoever the body claims to be. Sign-in attempts are counted by the lockout
# instead, in the database, so an outage of the limiter's store cannot loosen them.
per_address = limiter.limit(lambda: current_app.config["AUTH_RATE_LIMIT"], key_func=get_remote_address)
PUBLIC = {"security": []}
REFRESH_TOKEN = {"security": [{"bearerAuth": []}], "description": "Send the refresh token as the bearer token."}


def _login(username: str, password: str):
    """Sign in, with the attempt in the audit trail whatever its outcome."""
    with audit.failures_recorded("auth.login", actor_name=username[:255]):
        user, tokens = services.login(username, password, get_remote_address())
    audit.record("auth.login", actor=user)
    return user, tokens


@blp.before_request
def _bounded_body() -> None:
    request.max_content_length = MAX_BODY_BYTES


@blp.after_request
def _no_store(response):
    # Tokens and personal data: no browser or proxy cache may keep them (RFC 6749 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@blp.route("/register")
class Register(MethodView):
    decorators = [per_address]

    @blp.doc(**PUBLIC)
    @blp.arguments(RegisterSchema)
    @blp.response(201, RegisteredSchema)
    @blp.alt_response(409, description="Username or email already exists")
    def post(self, data):
        """Register a new user account"""
        user = services.register(data["username"], data["email"], data["password"])
        audit.record("auth.register", actor=user, target_type="user", target_id=user.id)
        db.session.commit()
        return {"message": "User registered successfully", "user": user}


@blp.route("/login")
class Login(MethodView):
    @blp.doc(**PUBLIC)
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResponseSchema)
    @blp.alt_response(401, description="Invalid username or password")
    @blp.alt_response(429, description="Too many failed attempts from this address or for this account")
    def post(self, data):
        """Sign in and receive an access and a refresh token"""
        user, tokens = _login(data["username"], data["password"])
        db.session.commit()
        return {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "user": user}


@blp.route("/token")
class Token(MethodView):
    @blp.doc(**PUBLIC)
    @blp.arguments(OAuth2PasswordSchema, location="form")
    @blp.response(200, OAuth2TokenSchema)
    @blp.alt_response(401, description="Invalid username or password")
    @blp.alt_response(429, description="Too many failed attempts from this address or for this account")
    def post(self, data):
        """OAuth2 password grant (what Swagger UI's Authorize button sends)"""
        _, tokens = _login(data["username"], data["password"])
        db.session.commit()
        return {
            "access_token": tokens.access_token,
            "token_type": "bearer",
            "refresh_token": tokens.refresh_token,
            "expires_in": tokens.expires_in,
        }


@blp.route("/refresh")
class Refresh(MethodView):
    @refresh_token_required
    @blp.doc(**REFRESH_TOKEN)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Invalid, expired, revoked or reused refresh token")
    def post(self):
        """Exchange a refresh token for a new access token and a new refresh token"""
        try:
            tokens = services.refresh(current_user(), current_token())
        except RefreshTokenReused:
            db.session.commit()  # the session's revocation must stick although this request fails
            raise
        db.session.commit()
        return {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}


@blp.route("/profile")
class Profile(MethodView):
    @login_required
    @blp.response(200, ProfileSchema)
    def get(self):
        """Get the current user's profile"""
        return {"user": current_user()}

    @login_required
    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, ProfileUpdatedSchema)
    @blp.alt_response(401, description="Invalid token, or incorrect current password")
    @blp.alt_response(409, description="Username or email already exists")
    def put(self, data):
        """Update the current user's profile; a new password signs out every other session"""
        action = "auth.password_change" if "new_password" in data else "auth.profile_update"
        changed = {"fields": ",".join(sorted(k for k in data if k != "current_password"))}
        with audit.failures_recorded(action, actor=current_user(), details=changed):
            user = services.update_profile(current_user(), current_token(), data, get_remote_address())
        audit.record(action, actor=user, target_type="user", target_id=user.id, details=changed)
        db.session.commit()
        return {"message": "Profile updated successfully", "user": user}


@blp.route("/me")
class Me(MethodView):
    @login_required
    @blp.response(200, UserSchema)
    def get(self):
        """Who the token belongs to: id, username, email and role (seed 002)"""
        return current_user()


@blp.route("/logout")
class Logout(MethodView):
    @login_required
    @blp.response(200, LoggedOutSchema)
    def post(self):
        """Sign out: this access token and its session's refresh tokens stop working"""
        services.logout(current_user(), current_token())
        audit.record("auth.logout", actor=current_user())
        db.session.commit()
        return {"message": "Successfully logged out"}


@blp.route("/users")
class Users(MethodView):
    @roles_required("admin")
    @blp.arguments(UserQueryArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, UserPageSchema)
    @blp.alt_response(403, description="Not an admin")
    def get(self, args):
        """List accounts (admins only)"""
        users, total = services.list_users(args["page"], args["per_page"], args.get("role"))
        audit.record("admin.list_users", actor=current_user())
        db.session.commit()
        return {"users": users, "pagination": pagination(args["page"], args["per_page"], total)}
