"""What a username, an email address and a password must look like.

Pure functions shared by the API and the CLI. Each raises `RuleViolation` naming the field, with
a message that tells the user how to fix it.
"""

from __future__ import annotations

import re
import unicodedata

from marshmallow import ValidationError
from marshmallow.validate import Email
from zxcvbn import zxcvbn

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 10, 128
EMAIL_MAX = 254
ROLES = ("user", "admin")

USERNAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{{USERNAME_MIN - 1},{USERNAME_MAX - 1}}}$"
_USERNAME = re.compile(USERNAME_PATTERN)
USERNAME_RULE = (
    f"Username must be {USERNAME_MIN} to {USERNAME_MAX} characters long, use only letters, digits, "
    "'_', '.' and '-', and start with a letter or digit"
)
PASSWORD_RULE = (
    f"Password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long, mix at least two kinds of "
    "characters (lower-case letters, upper-case letters, digits, symbols) and not be easy to guess "
    "(common passwords, keyboard walks, a word with digits)"
)
# zxcvbn's score: 2 means at least a million guesses, beyond reach of an online attacker that the
# sign-in protection throttles; 0 and 1 are the top of every leaked-password list and its variants.
PASSWORD_MIN_SCORE = 2
_ESTIMATED_CHARS = 72  # zxcvbn's own limit; a longer password is judged by its start
_email_validator = Email(error="Not a valid email address")


class RuleViolation(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_username(raw: str) -> str:
    """The name as stored and shown: NFKC-normalised, so look-alike spellings collapse to one form."""
    name = unicodedata.normalize("NFKC", raw)
    if not _USERNAME.fullmatch(name):
        raise RuleViolation("username", USERNAME_RULE)
    return name


def username_key(raw: str) -> str:
    """The form two names are compared in: NFKC, then case-folded ("ＡＬＩＣＥ" == "alice")."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())


def normalize_email(raw: str) -> str:
    email = unicodedata.normalize("NFKC", raw).lower()
    if len(email) > EMAIL_MAX:
        raise RuleViolation("email", f"Email address must be at most {EMAIL_MAX} characters long")
    try:
        _email_validator(email)
    except ValidationError as exc:
        raise RuleViolation("email", "Not a valid email address") from exc
    return email


def normalize_password(raw: str) -> str:
    # NIST SP 800-63B: normalise so the same password typed on another keyboard or OS still matches.
    return unicodedata.normalize("NFKC", raw)


def check_password(password: str, *, username: str, email: str) -> None:
    """`password` is already normalised; `username` and `email` are the account's (new) ones."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise RuleViolation("password", PASSWORD_RULE)
    kinds = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if kinds < 2:
        raise RuleViolation("password", PASSWORD_RULE)
    folded = password.casefold()
    own = (username, email, email.split("@")[0])
    if folded in (part.casefold() for part in own):
        raise RuleViolation("password", "Password must not be your username or email address")
    estimate = zxcvbn(password[:_ESTIMATED_CHARS], user_inputs=list(own))
    if estimate["score"] < PASSWORD_MIN_SCORE:
        feedback = estimate["feedback"]
        why = feedback["warning"] or "It follows a pattern that is tried early."
        hints = " ".join(feedback["suggestions"]) or "Add another word or two; uncommon words are better."
        raise RuleViolation("password", f"Password is too easy to guess. {why} {hints}")
