"""What the OpenAPI document's own formats mean, taught to schemathesis (loaded through
SCHEMATHESIS_HOOKS by tests/system/contract.py).

JSON Schema cannot state these rules, so the document names them as formats and describes them;
here each gets a generator of values the rule accepts, so a request schemathesis calls valid is
valid. Values outside a rule are covered by each feature's own tests.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os

import schemathesis
from hypothesis import strategies as st

# Keys registered with the VirusTotal emulator by the test (one per line).
VT_KEYS_ENV = "CONTRACT_VT_KEYS_FILE"

_LABEL = st.from_regex(r"\A[a-z][a-z0-9]{0,14}\Z")
_TLDS = st.sampled_from(["com", "net", "org", "io", "de", "info"])


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_global and not address.is_multicast and mapped is None


def _public(version: int) -> st.SearchStrategy[str]:
    return st.ip_addresses(v=version).filter(_is_public).map(str)


def _hex(size: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=size, max_size=size).map(bytes.hex)


_domain = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=3), _TLDS)
_ip = _public(4) | _public(6)
_url = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    _domain,
    st.from_regex(r"\A[a-z0-9/_-]{0,30}\Z"),
)
_file = _hex(16) | _hex(20) | _hex(32)

INDICATORS = {"ip": _ip, "domain": _domain, "url": _url | _domain, "file": _file}


def _strong_password(seed: bytes, length: int) -> str:
    # Drawn bytes spread by a hash: hypothesis favours runs of zeros, which no estimator calls strong.
    digest = base64.b64encode(hashlib.sha512(seed).digest()).decode() * 2
    return f"Vx9-{digest}"[:length]


def _vt_keys() -> st.SearchStrategy[str]:
    path = os.environ.get(VT_KEYS_ENV)
    keys = open(path).read().split() if path else []  # noqa: PTH123, SIM115
    return st.sampled_from(keys) if keys else st.nothing()


schemathesis.openapi.format("indicator", st.one_of(*INDICATORS.values()))
for vt_type, strategy in INDICATORS.items():
    schemathesis.openapi.format(f"indicator-{vt_type}", strategy)
# A new password: 10 to 128 characters (the document says so too) that are hard to guess.
new_passwords = st.builds(_strong_password, st.binary(min_size=1, max_size=16), st.integers(10, 128))
schemathesis.openapi.format("new-password", new_passwords)
schemathesis.openapi.format("vt-api-key", _vt_keys())
indicator_lines = st.lists(st.one_of(*INDICATORS.values()), min_size=1, max_size=5).map("\n".join)
schemathesis.openapi.format("indicator-list", indicator_lines)
