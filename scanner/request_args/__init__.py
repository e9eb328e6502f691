"""What a request brings besides its JSON body, read the same way by every feature: ids from URLs,
`sort_by`, pages, date ranges and comma lists in query strings, multipart upload bodies."""

from .ids import parse_uuid
from .openapi import links, multipart_file_body
from .pagination import PaginationSchema, page_of, pagination
from .query import CommaList, DateOrDateTime, SortBy, check_history_args, comma_list, exclusive_end, split
from .sorting import SortKey, parse_sort

__all__ = [
    "CommaList",
    "DateOrDateTime",
    "PaginationSchema",
    "SortBy",
    "SortKey",
    "check_history_args",
    "comma_list",
    "exclusive_end",
    "links",
    "multipart_file_body",
    "page_of",
    "pagination",
    "parse_sort",
    "parse_uuid",
    "split",
]
