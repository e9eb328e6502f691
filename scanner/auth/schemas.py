"""Request and response bodies of /api/auth. Unknown fields are refused (marshmallow's RAISE).

Shapes and types only; what a username, email or password must look like is in `rules.py`, which
the CLI applies too.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from ..db_types import SQL_INT_MAX
from ..request_args import PaginationSchema
from ..request_parser import StrictBoolean
from .rules import PASSWORD_MAX, PASSWORD_MIN, PASSWORD_RULE, ROLES, USERNAME_MAX, USERNAME_PATTERN, USERNAME_RULE

# Sign-in fields are bounded generously: no stored name or password is longer, and a megabyte
# of "password" must not reach the hash function.
LOGIN_USERNAME_MAX = 4 * USERNAME_MAX
LOGIN_PASSWORD_MAX = 1024


class UserSchema(Schema):
    id = fields.UUID()
    username = fields.String()
    email = fields.String()
    role = fields.String(metadata={"enum": list(ROLES)})
    never_upload = fields.Boolean(
        metadata={"description": "File scans of this user never upload the file to VirusTotal by default"}
    )


class AdminUserSchema(UserSchema):
    created_at = fields.DateTime()


# What rules.py checks, told by the document as far as JSON Schema can: the username's
# characters, the password's length. A new password's strength (zxcvbn) is no JSON Schema rule:
# its format, "new-password" (not a JSON Schema format; HTML's name for it), says so.
_USERNAME = {"description": USERNAME_RULE, "pattern": USERNAME_PATTERN}
_NEW_PASSWORD = {"format": "new-password", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}


class RegisterSchema(Schema):
    username = fields.String(required=True, metadata={**_USERNAME, "example": "johndoe"})
    email = fields.String(required=True, metadata={"format": "email", "example": "john.doe@example.com"})
    password = fields.String(required=True, metadata={**_NEW_PASSWORD, "description": PASSWORD_RULE})


class RegisteredSchema(Schema):
    message = fields.String()
    user = fields.Nested(UserSchema)


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=LOGIN_USERNAME_MAX))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=LOGIN_PASSWORD_MAX), metadata={"format": "password"}
    )


class OAuth2PasswordSchema(LoginSchema):
    """RFC 6749 section 4.3 (resource owner password credentials), as Swagger UI sends it."""

    class Meta:
        # RFC 6749 3.1: the server MUST ignore request parameters it does not recognise.
        unknown = EXCLUDE

    grant_type = fields.String(validate=validate.Equal("password", error="Only the password grant is supported."))
    scope = fields.String()
    client_id = fields.String()
    client_secret = fields.String(load_only=True)


class LoginResponseSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    user = fields.Nested(UserSchema)


class OAuth2TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String(metadata={"example": "bearer"})
    refresh_token = fields.String()
    expires_in = fields.Integer(metadata={"description": "Seconds the access token is valid"})


class TokenPairSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String(metadata={"description": "The presented refresh token is retired; use this one"})


class ProfileSchema(Schema):
    user = fields.Nested(UserSchema)


class ProfileUpdateSchema(Schema):
    class Meta:
        openapi = {
            "minProperties": 1,  # an empty update is refused
            # A new password or email address comes with the current password.
            "allOf": [
                {"anyOf": [{"not": {"required": [changed]}}, {"required": ["current_password"]}]}
                for changed in ("email", "new_password")
            ],
        }

    username = fields.String(metadata=_USERNAME)
    email = fields.String(metadata={"format": "email"})
    current_password = fields.String(
        metadata={"format": "password", "description": "Needed to change the email address or the password"}
    )
    new_password = fields.String(
        metadata={**_NEW_PASSWORD, "description": PASSWORD_RULE + ". Changing it signs out every other session."}
    )
    never_upload = StrictBoolean()


class ProfileUpdatedSchema(RegisteredSchema):
    pass


class LoggedOutSchema(Schema):
    message = fields.String()


class UserQueryArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    role = fields.String(validate=validate.OneOf(ROLES))


class UserPageSchema(Schema):
    users = fields.List(fields.Nested(AdminUserSchema))
    pagination = fields.Nested(PaginationSchema)
