"""Indicator detection and normalisation: pure functions, no app needed."""

from __future__ import annotations

import pytest

from scanner.errors import InvalidIndicator
from scanner.lookups.indicators import parse


@pytest.mark.parametrize(
    ("raw", "ioc_type", "value"),
    [
        ("8.8.8.8", "ipv4", "8.8.8.8"),
        (" 8.8.4.4\t", "ipv4", "8.8.4.4"),
        ("2001:4860:4860:0000:0000:0000:0000:8888", "ipv6", "2001:4860:4860::8888"),
        ("[2606:4700::1111]", "ipv6", "2606:4700::1111"),
        ("::ffff:1.1.1.1", "ipv4", "1.1.1.1"),
        ("Example.COM", "domain", "example.com"),
        ("example.com.", "domain", "example.com"),
        ("example[.]com", "domain", "example.com"),
        ("_dmarc.example.com", "domain", "_dmarc.example.com"),
        ("Bücher.DE", "domain", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "domain", "xn--bcher-kva.de"),
        ("44D88612FEA8A8F36DE82E1278ABB02F", "md5", "44d88612fea8a8f36de82e1278abb02f"),
        ("3395856CE81F2B7382DEE72602F798B642F14140", "sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
        (
            "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F",
            "sha256",
            "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        ),
        ("HTTPS://Example.COM", "url", "https://example.com/"),
        ("https://example.com:443/a?b=C#frag", "url", "https://example.com/a?b=C"),
        ("http://example.com:8080/x", "url", "http://example.com:8080/x"),
        ("hxxp://evil[.]example[.]com/drop", "url", "http://evil.example.com/drop"),
        ("example.com/path?q=1", "url", "http://example.com/path?q=1"),
        ("http://bücher.de/ä", "url", "http://xn--bcher-kva.de/ä"),
        ("http://[2606:4700::1111]/", "url", "http://[2606:4700::1111]/"),
        ("ftp://ftp.example.org", "url", "ftp://ftp.example.org/"),
    ],
)
def test_detects_and_normalises(raw, ioc_type, value):
    found = parse(raw)
    assert (found.type, found.value) == (ioc_type, value)


def test_variants_are_one_indicator_with_one_cache_key_and_id():
    variants = [parse(v) for v in ("Example.COM", "example.com", "EXAMPLE.com.", "example[.]com")]
    assert len(set(variants)) == 1
    assert variants[0].cache_key == "vt_domain_example.com"
    assert len({v.ioc_id for v in variants}) == 1
    assert parse("8.8.8.8").cache_key == "vt_ip_8.8.8.8"
    assert parse("A" * 64).cache_key == "vt_file_" + "a" * 64


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("10.0.0.1", "private address"),
        ("172.16.5.4", "private address"),
        ("192.168.1.1", "private address"),
        ("fd00::1", "private address"),
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("169.254.10.10", "link-local address"),
        ("fe80::1", "link-local address"),
        ("224.0.0.1", "multicast address"),
        ("0.0.0.0", "unspecified address"),
        ("192.0.2.10", "reserved for documentation"),
        ("2001:db8::1", "reserved for documentation"),
        ("240.0.0.1", "reserved address"),
        ("100.64.0.1", "not a publicly routable address"),
        ("localhost", "private or reserved name"),
        ("nas.internal", "private or reserved name"),
        ("http://127.0.0.1:8000/", "loopback address"),
    ],
)
def test_non_public_addresses_and_names_are_refused_with_the_reason(raw, reason):
    with pytest.raises(InvalidIndicator) as caught:
        parse(raw)
    assert reason in caught.value.message
    assert caught.value.code == "IOC_VALIDATION_ERROR"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "hello world",
        "abc",
        "-bad.example.com",
        "example",
        "x.123",
        "999.1.1.1",
        "a" * 2049,
        "gopher://x.com",
    ],
)
def test_other_text_is_refused_saying_what_was_expected(raw):
    with pytest.raises(InvalidIndicator) as caught:
        parse(raw)
    assert caught.value.details["expected"].startswith("an IPv4 or IPv6 address")


def test_an_expected_kind_is_enforced_and_a_bare_host_reads_as_a_url():
    assert parse("example.com", "url").value == "http://example.com/"
    assert parse("8.8.8.8", "ip").type == "ipv4"
    assert parse("44d88612fea8a8f36de82e1278abb02f", "file").type == "md5"
    with pytest.raises(InvalidIndicator) as caught:
        parse("8.8.8.8", "domain")
    assert caught.value.message == "This is an IPv4 address, not a domain name"
    with pytest.raises(InvalidIndicator) as caught:
        parse("example.com", "file")
    assert caught.value.details["expected"] == "an MD5, SHA-1 or SHA-256 hash"
