"""What an analyst typed, as one indicator VirusTotal can be asked about: its type detected and its
value normalised, so `Example.COM`, `example.com.` and `example[.]com` are the same indicator.

Types: ipv4, ipv6, domain, url, md5, sha1, sha256. Normal forms:
- hashes in lower case;
- IP addresses in Python's canonical text (IPv6 compressed, an IPv4-mapped IPv6 address as IPv4);
- domains in lower-case ASCII, internationalised labels in IDNA (punycode), no trailing dot;
- URLs with the scheme and host in lower case (host as IDNA), the default port dropped, an empty
  path made `/` and the fragment removed; `http://` is assumed when no scheme is given.

Analysts often paste "defanged" indicators (`hxxp://evil[.]com`); those are re-armed first.
Addresses VirusTotal can know nothing about (private, loopback, link-local, reserved,
documentation, multicast ranges, and hosts like `localhost`) are refused with the reason.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import idna

from ..errors import InvalidIndicator

IocType = Literal["ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256"]
VtType = Literal["file", "url", "domain", "ip"]
IOC_TYPES: tuple[str, ...] = ("ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256")
VT_TYPE: dict[str, VtType] = {
    "ipv4": "ip",
    "ipv6": "ip",
    "domain": "domain",
    "url": "url",
    "md5": "file",
    "sha1": "file",
    "sha256": "file",
}
EXPECTED = "an IPv4 or IPv6 address, a domain, a URL, or an MD5, SHA-1 or SHA-256 hash"
EXPECTED_BY_VT_TYPE = {
    "file": "an MD5, SHA-1 or SHA-256 hash",
    "url": "a URL",
    "domain": "a domain name",
    "ip": "an IPv4 or IPv6 address",
}
MAX_LENGTH = 2048
URL_SCHEMES = ("http", "https", "ftp")
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
# Names that never resolve on the internet (RFC 6761, 6762, 8375 and common private suffixes).
PRIVATE_SUFFIXES = ("localhost", "local", "internal", "invalid", "test", "example", "home.arpa", "lan")
# A stable id for an indicator (seed 002's `ioc.id`), the same for every lookup of it.
IOC_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b7a-9a55-2f4f3c1d7e90")

_HASHES = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ADDRESS_CHARS = re.compile(r"^[0-9a-fA-F.:]+$")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_DEFANG = (
    (re.compile(r"^hxxp(s?)://", re.I), r"http\1://"),
    (re.compile(r"^fxp://", re.I), "ftp://"),
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.I), "."),
    (re.compile(r"\[:\]"), ":"),
    (re.compile(r"\[://\]"), "://"),
)


@dataclass(frozen=True)
class Indicator:
    type: IocType
    value: str

    @property
    def vt_type(self) -> VtType:
        return VT_TYPE[self.type]

    @property
    def is_hash(self) -> bool:
        return self.vt_type == "file"

    @property
    def cache_key(self) -> str:
        """Seed 000's key: vt_{type}_{value} (the cache adds its own prefix)."""
        return f"vt_{self.vt_type}_{self.value}"

    @property
    def ioc_id(self) -> uuid.UUID:
        return uuid.uuid5(IOC_NAMESPACE, f"{self.type}:{self.value}")


def parse(raw: str, vt_type: str | None = None) -> Indicator:
    """The indicator in `raw`; with `vt_type` ("file", "url", "domain", "ip") it must be of that kind
    (a bare host given as a URL is read as the URL `http://host/`). Raises InvalidIndicator saying
    what was expected."""
    text = _rearm((raw or "").strip().strip("\"'").strip())
    expected = EXPECTED_BY_VT_TYPE.get(vt_type or "", EXPECTED)
    if not text:
        raise _invalid(raw, f"Empty indicator: expected {expected}", expected)
    if len(text) > MAX_LENGTH:
        raise _invalid(raw, f"Indicator is longer than {MAX_LENGTH} characters: expected {expected}", expected)
    if vt_type == "url":
        return Indicator("url", _url(text, raw, expected))
    found = _detect(text, raw, expected)
    if found is None:
        raise _invalid(raw, f"Not a valid indicator: expected {expected}", expected)
    if vt_type and found.vt_type != vt_type:
        raise _invalid(raw, f"This is {_article(found.type)}, not {expected}", expected, detected=found.type)
    return found


def _detect(text: str, raw: str, expected: str) -> Indicator | None:
    kind = _HASHES.get(len(text))
    if kind and _HEX.match(text):
        return Indicator(kind, text.lower())  # type: ignore[arg-type]
    address = _ip(text)
    if address is not None:
        _refuse_private(address, raw, expected)
        return Indicator("ipv4" if address.version == 4 else "ipv6", str(address))
    if _SCHEME.match(text) or any(c in text for c in "/?#:"):
        return Indicator("url", _url(text, raw, expected))
    if text.lower().rstrip(".") in PRIVATE_SUFFIXES:
        _refuse_private_name(text.lower().rstrip("."), raw, expected)
    domain = _domain(text)
    if domain is not None:
        _refuse_private_name(domain, raw, expected)
        return Indicator("domain", domain)
    return None


def _rearm(text: str) -> str:
    for pattern, replacement in _DEFANG:
        text = pattern.sub(replacement, text)
    return text


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    # Only these characters make an address (a "%" zone index names an interface of one machine):
    # anything else is not one, without the price of ip_address's refusal.
    if not _ADDRESS_CHARS.match(candidate):
        return None
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _refuse_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address, raw: str, expected: str) -> None:
    if address.is_global and not address.is_multicast:
        return
    if address.is_loopback:
        what = "a loopback address"
    elif address.is_link_local:
        what = "a link-local address"
    elif address.is_multicast:
        what = "a multicast address"
    elif address.is_unspecified:
        what = "the unspecified address"
    elif _is_documentation(address):
        what = "an address reserved for documentation"
    elif address.is_reserved:
        what = "a reserved address"
    elif address.is_private:
        what = "a private address"
    else:
        what = "not a publicly routable address"
    raise _invalid(
        raw,
        f"{address} is {what}; VirusTotal has no data on private, loopback or reserved ranges",
        expected,
        reason="non_public_address",
    )


_DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def _is_documentation(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address.version == net.version and address in net for net in _DOCUMENTATION)


def _domain(text: str) -> str | None:
    name = text.rstrip(".")
    if not name or "." not in name or len(name) > 253 or any(c.isspace() for c in name):
        return None
    labels = []
    for label in name.split("."):
        if not label.isascii():
            try:
                label = idna.encode(label, uts46=True).decode("ascii")
            except idna.IDNAError:
                return None
        label = label.lower()
        if not _LABEL.match(label):
            return None
        labels.append(label)
    if not _TLD.match(labels[-1]):
        return None
    domain = ".".join(labels)
    return domain if len(domain) <= 253 else None


def _refuse_private_name(domain: str, raw: str, expected: str) -> None:
    if any(domain == suffix or domain.endswith("." + suffix) for suffix in PRIVATE_SUFFIXES):
        raise _invalid(
            raw,
            f"{domain} is a private or reserved name; VirusTotal has no data on it",
            expected,
            reason="non_public_name",
        )


def _url(text: str, raw: str, expected: str) -> str:
    if not _SCHEME.match(text):
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _invalid(raw, "Not a valid URL: the host or port cannot be read", expected) from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise _invalid(raw, f"Unsupported URL scheme {scheme!r}: expected {', '.join(URL_SCHEMES)}", expected)
    if any(c.isspace() for c in text):
        raise _invalid(raw, "Not a valid URL: it contains spaces (percent-encode them)", expected)
    host = parts.hostname
    if not host:
        raise _invalid(raw, "Not a valid URL: it has no host", expected)
    address = _ip(host)
    if address is not None:
        _refuse_private(address, raw, expected)
        host = f"[{address}]" if address.version == 6 else str(address)
    else:
        domain = _domain(host)
        if domain is None:
            raise _invalid(raw, f"Not a valid URL: {host!r} is not a valid host name", expected)
        _refuse_private_name(domain, raw, expected)
        host = domain
    netloc = host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{credentials}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _article(ioc_type: str) -> str:
    names = {
        "ipv4": "an IPv4 address",
        "ipv6": "an IPv6 address",
        "domain": "a domain name",
        "url": "a URL",
        "md5": "an MD5 hash",
        "sha1": "a SHA-1 hash",
        "sha256": "a SHA-256 hash",
    }
    return names[ioc_type]


def _invalid(raw: str, message: str, expected: str, **details: str) -> InvalidIndicator:
    return InvalidIndicator(message, details={"ioc": (raw or "")[:200], "expected": expected, **details})
