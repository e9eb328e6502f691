"""`page` and `per_page`: one page of rows and the figures that come with it."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Select, func, select

from ..extensions import db


def page_of(query: Select, page: int, per_page: int) -> tuple[list[Any], int]:
    """The rows of an ordered `query` on one page (1-based), and the number of rows on all pages."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total


def pagination(page: int, per_page: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "total_pages": math.ceil(total / per_page), "total_items": total}


class PaginationSchema(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total_pages = fields.Integer()
    total_items = fields.Integer()
