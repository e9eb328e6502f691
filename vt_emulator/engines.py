"""The emulator's antivirus engines and their deterministic verdicts.

A verdict depends only on what is scanned (and, for a chosen verdict, on the sha256), so the same
file always gets the same report and tests can assert exact categories.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Literal

# As VirusTotal documents them; written out here, not imported from the client, so the emulator
# stays an independent witness of what the service parses.
NETWORK_CATEGORIES = ("harmless", "malicious", "suspicious", "undetected", "timeout")
FILE_CATEGORIES = (*NETWORK_CATEGORIES, "type-unsupported", "failure", "confirmed-timeout")

Verdict = Literal["clean", "suspicious", "malicious", "eicar"]
VERDICTS: tuple[str, ...] = ("clean", "suspicious", "malicious", "eicar")

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SUSPICIOUS_MARKER = b"SCANNER-TEST-SUSPICIOUS"
# The EICAR standard allows trailing whitespace after the string, up to 128 bytes in total.
EICAR_MAX_SIZE = 128


@dataclass(frozen=True)
class Engine:
    name: str
    version: str
    eicar: str | None  # result for the EICAR file; None: the engine does not flag it
    malware: str  # result for malware, with {n} (a number), {h} / {H} (hex) taken from the sha256
    kind: Literal["av", "ml", "mobile"] = "av"


# Signature engines flag EICAR; machine-learning engines ignore it (it is not a program) but
# weigh in on real malware; mobile engines only take Android/iOS packages.
FILE_ENGINES: tuple[Engine, ...] = (
    Engine("Bkav", "2.0.0.1", "W32.EicarTest.Trojan", "W32.AIDetectMalware"),
    Engine("Lionic", "8.16", "Test.File.EICAR.y!c", "Trojan.Win32.Generic.4!c"),
    Engine("MicroWorld-eScan", "14.0.409.0", "EICAR-Test-File", "Trojan.GenericKD.{n}"),
    Engine("ClamAV", "1.4.3.0", "Win.Test.EICAR_HDB-1", "Win.Malware.Agent-{n}"),
    Engine("CAT-QuickHeal", "22.00", "EICAR.TestFile", "Trojan.Generic.{n}"),
    Engine("Skyhigh", "SL+", "EICAR test file", "Artemis!{H}"),
    Engine("McAfee", "6.0.6.653", "EICAR test file", "Artemis!{H}"),
    Engine("Malwarebytes", "4.5.5.54", "EICAR-AV-Test", "Malware.AI.{n}"),
    Engine("Zillya", "2.0.0.5412", "EICAR.TestFile", "Trojan.Generic.Win32.{n}"),
    Engine("Sangfor", "2.22.3.0", "EICAR-Test-File (not a virus)", "Trojan.Win32.Save.a"),
    Engine("K7AntiVirus", "12.245.55979", "EICAR_Test_File", "Trojan ( 0058a2a31 )"),
    Engine("Alibaba", "0.3.0.5", "Virus:Any/EICAR_Test_File.534838ff", "Trojan:Win32/Generic.{h}"),
    Engine("K7GW", "12.245.55979", "EICAR_Test_File", "Trojan ( 0058a2a31 )"),
    Engine("Arcabit", "2022.0.0.18", "EICAR-Test-File (not a virus)", "Trojan.Generic.D{H}"),
    Engine("Baidu", "1.0.0.2", "Win32.Test.Eicar.a", "Win32.Trojan.Agent.{h}"),
    Engine("VirIT", "9.5.958", "EICAR-Test-File", "Trojan.Win32.Generic.{H}"),
    Engine("Symantec", "1.22.0.0", "EICAR Test String", "Trojan.Gen.MBT"),
    Engine("ESET-NOD32", "32197", "Eicar test file", "a variant of Win32/Kryptik.{H}"),
    Engine("TrendMicro-HouseCall", "24.550.0.1002", "Eicar_test_file", "TROJ_GEN.R002C0{H}"),
    Engine("Avast", "23.9.8494.0", "EICAR Test-NOT virus!!!", "Win32:Malware-gen"),
    Engine("Cynet", "4.0.3.4", "Malicious (score: 99)", "Malicious (score: 100)"),
    Engine("Kaspersky", "22.0.1.28", "EICAR-Test-File", "HEUR:Trojan.Win32.Generic"),
    Engine("BitDefender", "7.2", "EICAR-Test-File (not a virus)", "Trojan.GenericKD.{n}"),
    Engine("NANO-Antivirus", "1.0.170.26531", "Marker.Dos.EICAR-Test-File.dyb", "Trojan.Win32.Agent.{h}"),
    Engine("SUPERAntiSpyware", "5.6.0.1032", "NotAThreat.EICAR[TestFile]", "Trojan.Agent/Gen-Scanner"),
    Engine("Tencent", "1.0.0.1", "EICAR.TEST.NOT-A-VIRUS", "Malware.Win32.Gencirc.{h}"),
    Engine("Emsisoft", "2024.8.0.61147", "EICAR-Test-File (not a virus) (B)", "Trojan.GenericKD.{n} (B)"),
    Engine("F-Secure", "18.10.1547.307", "EICAR_Test_File", "Trojan.TR/Crypt.XPACK.Gen"),
    Engine("DrWeb", "7.0.65.5230", "EICAR Test File (NOT a Virus!)", "Trojan.PWS.Siggen3.{n}"),
    Engine("VIPRE", "6.0.0.35", "EICAR-Test-File (not a virus)", "Trojan.GenericKD.{n}"),
    Engine("TrendMicro", "24.550.0.1002", "Eicar_test_file", "TROJ_GEN.R002C0{H}"),
    Engine("FireEye", "35.47.0.0", "EICAR-Test-File (not a virus)", "Generic.mg.{h}"),
    Engine("Sophos", "2.5.5.0", "EICAR-AV-Test", "Mal/Generic-S"),
    Engine("Ikarus", "6.3.30.0", "EICAR-Test-File", "Trojan.Win32.Agent"),
    Engine("Jiangmin", "16.0.100", "EICAR-Test-File", "Trojan.Generic.{h}"),
    Engine("Google", "1725552035", "Detected", "Detected"),
    Engine("Avira", "8.3.3.20", "Eicar-Test-Signature", "TR/Crypt.XPACK.Gen"),
    Engine("Antiy-AVL", "3.0", "TestFile/Win32.EICAR", "Trojan/Win32.Agent"),
    Engine("Kingsoft", "2023.11.28.1", "Win32.Test.Eicar.a", "Win32.Troj.Generic.a"),
    Engine("Microsoft", "1.1.24080.9", "Virus:DOS/EICAR_Test_File", "Trojan:Win32/Wacatac.B!ml"),
    Engine("Gridinsoft", "1.0.189.174", "Trojan.U.EICAR_Test_File.sd!yf", "Trojan.Win32.Agent.sa"),
    Engine("Xcitium", "36940", "ApplicUnwnt@#2975xfk8s2pq1", "Malware@#{h}"),
    Engine("ViRobot", "2014.3.20.0", "EICAR-test", "Trojan.Win.Z.Agent.{n}"),
    Engine("ZoneAlarm", "1.0", "EICAR-Test-File", "HEUR:Trojan.Win32.Generic"),
    Engine("GData", "A:25.38549B:27.37082", "EICAR_TEST_FILE", "Trojan.GenericKD.{n}"),
    Engine("Varist", "6.5.1.2", "EICAR_Test_File", "W32/ABRisk.{H}"),
    Engine("AhnLab-V3", "3.26.0.10517", "Virus/EICAR_Test_File", "Trojan/Win.Generic.C{n}"),
    Engine("Acronis", "1.2.0.121", "EICAR-Test-File (not a virus)", "Trojan.Win32.Agent.{h}"),
    Engine("VBA32", "5.0.4", "EICAR-Test-File", "Trojan.Agent"),
    Engine("ALYac", "2.0.0.10", "Misc.Eicar-Test-File", "Trojan.GenericKD.{n}"),
    Engine("MAX", "2023.1.4.1", "malware (ai score=100)", "malware (ai score=89)"),
    Engine("Zoner", "2.2.2.0", "EICAR.Test.File-NoVirus.250", "Trojan.Win32.{n}"),
    Engine("Rising", "25.0.0.28", "EICAR-Test-File (CLASSIC)", "Trojan.Generic@AI.100 (RDML:{h})"),
    Engine("Yandex", "5.5.2.24", "EICAR_test_file", "Trojan.Agent!{h}"),
    Engine("TACHYON", "2024-09-05.02", "EICAR-Test-File", "Trojan/W32.Agent.{n}"),
    Engine("MaxSecure", "1.0.0.1", "Virus.COM.Eicar.A", "Trojan.Malware.{n}.susgen"),
    Engine("Fortinet", "7.0.30.0", "EICAR_TEST_FILE", "W32/Agent.{H}!tr"),
    Engine("AVG", "23.9.8494.0", "EICAR Test-NOT virus!!!", "Win32:Malware-gen"),
    Engine("Panda", "4.6.4.2", "EICAR-AV-TEST-FILE", "Trj/Chgt.AD"),
    Engine("Webroot", "1.9.0.8", "Eicar.Test.File", "W32.Trojan.Gen"),
    Engine("CrowdStrike", "1.0", None, "win/malicious_confidence_100% (W)", "ml"),
    Engine("DeepInstinct", "5.0.0.8", None, "MALICIOUS", "ml"),
    Engine("APEX", "6.584", None, "Malicious", "ml"),
    Engine("Paloalto", "0.9.0.1003", None, "generic.ml", "ml"),
    Engine("SentinelOne", "24.3.0.3", None, "Static AI - Malicious PE", "ml"),
    Engine("Cylance", "3.0.0.0", None, "Unsafe", "ml"),
    Engine("Avast-Mobile", "240905-00", None, "", "mobile"),
    Engine("BitDefenderFalx", "2.0.936.0", None, "", "mobile"),
    Engine("SymantecMobileInsight", "2.0", None, "", "mobile"),
    Engine("Trustlook", "1.0", None, "", "mobile"),
)

# The engines that call a borderline file suspicious, and what they say.
SUSPICIOUS_RESULTS = {
    "CrowdStrike": "win/grayware_confidence_60% (W)",
    "SentinelOne": "Static AI - Suspicious PE",
    "Cylance": "Unsafe",
}

# Share (percent) of signature engines that miss a given piece of malware.
MALWARE_MISS_PERCENT = 15

NETWORK_ENGINES: tuple[str, ...] = (
    "Abusix",
    "Acronis",
    "ADMINUSLabs",
    "AlienVault",
    "alphaMountain.ai",
    "Antiy-AVL",
    "Avira",
    "Bfore.Ai PreCrime",
    "BitDefender",
    "Certego",
    "Chong Lua Dao",
    "CMC Threat Intelligence",
    "CRDF",
    "Criminal IP",
    "CyRadar",
    "Cyble",
    "Dr.Web",
    "Emsisoft",
    "ESET",
    "Forcepoint ThreatSeeker",
    "Fortinet",
    "G-Data",
    "Google Safebrowsing",
    "Kaspersky",
    "Lionic",
    "MalwarePatrol",
    "MalwareURL",
    "Netcraft",
    "OpenPhish",
    "PhishLabs",
    "Phishtank",
    "Quttera",
    "Seclookup",
    "SOCRadar",
    "Sophos",
    "Sucuri SiteCheck",
    "Trustwave",
    "URLhaus",
    "Webroot",
    "Xcitium Verdict Cloud",
)
NETWORK_MALICIOUS_WORDS = ("malware", "evil", "phish")


def roll(*parts: str) -> int:
    """A stable number in [0, 100) for these parts: the emulator's only source of variety."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def engine_update(date: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(date))


def _file_verdict(engine: Engine, verdict: Verdict, sha256: str) -> tuple[str, str | None]:
    if engine.kind == "mobile":
        return "type-unsupported", None
    if verdict == "eicar" and engine.eicar is not None:
        return "malicious", engine.eicar
    if verdict == "suspicious" and engine.name in SUSPICIOUS_RESULTS:
        return "suspicious", SUSPICIOUS_RESULTS[engine.name]
    if verdict == "malicious" and (engine.kind == "ml" or roll(sha256, engine.name) >= MALWARE_MISS_PERCENT):
        name = engine.malware.format(n=int(sha256[:7], 16), h=sha256[:8], H=sha256[:10].upper())
        return "malicious", name
    return "undetected", None


def file_results(verdict: Verdict, sha256: str, date: int) -> dict[str, dict[str, Any]]:
    """`last_analysis_results` for a file with this verdict, analysed at `date`."""
    update = engine_update(date)
    results = {}
    for engine in FILE_ENGINES:
        category, result = _file_verdict(engine, verdict, sha256)
        results[engine.name] = {
            "category": category,
            "engine_name": engine.name,
            "engine_version": engine.version,
            "engine_update": update,
            "method": "blacklist",
            "result": result,
        }
    return results


def network_verdict(value: str) -> Verdict:
    lowered = value.lower()
    return "malicious" if any(word in lowered for word in NETWORK_MALICIOUS_WORDS) else "clean"


def network_results(value: str, verdict: Verdict | None = None) -> dict[str, dict[str, Any]]:
    """`last_analysis_results` for a URL, domain or IP address."""
    verdict = verdict or network_verdict(value)
    label = "phishing" if "phish" in value.lower() else "malware"
    results = {}
    for name in NETWORK_ENGINES:
        share = roll(value, name)
        if verdict in ("malicious", "eicar") and share < 35:
            category, result = "malicious", label
        elif (verdict == "suspicious" and share < 6) or (verdict in ("malicious", "eicar") and share < 38):
            category, result = "suspicious", "suspicious"
        elif share < 80:
            category, result = "harmless", "clean"
        else:
            category, result = "undetected", "unrated"
        results[name] = {"category": category, "engine_name": name, "method": "blacklist", "result": result}
    return results


def stats(results: dict[str, dict[str, Any]], categories: tuple[str, ...] = FILE_CATEGORIES) -> dict[str, int]:
    counts = dict.fromkeys(categories, 0)
    for result in results.values():
        counts[result["category"]] = counts.get(result["category"], 0) + 1
    return counts


def network_stats(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    return stats(results, NETWORK_CATEGORIES)


def classify(head: bytes, size: int, has_marker: bool) -> Verdict:
    """The verdict an upload earns from its content: `head` holds its first bytes."""
    if size <= EICAR_MAX_SIZE and head.startswith(EICAR) and not head[len(EICAR) :].strip():
        return "eicar"
    if has_marker:
        return "suspicious"
    return "clean"


_FILE_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF", "PDF", "pdf"),
    (b"MZ", "Win32 EXE", "peexe"),
    (b"\x7fELF", "ELF", "elf"),
    (b"PK\x03\x04", "ZIP", "zip"),
    (b"\x89PNG", "PNG", "png"),
    (b"\xff\xd8\xff", "JPEG", "jpeg"),
    (b"GIF8", "GIF", "gif"),
)


def file_type(head: bytes) -> tuple[str, str]:
    """(type_description, type_tag) from the first bytes, like VirusTotal's magic-based guess."""
    for magic, description, tag in _FILE_TYPES:
        if head.startswith(magic):
            return description, tag
    sample = head[:512]
    if sample and all(byte in b"\t\n\r\f" or 32 <= byte < 127 for byte in sample):
        return "Text", "text"
    return "unknown", "unknown"
