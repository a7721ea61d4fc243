"""The Debian mirror this machine's apt really uses, read the way apt reads its sources.

apt reads ``/etc/apt/sources.list`` and, in ``/etc/apt/sources.list.d/``, files ending in
``.list`` (one line per source: ``deb [options] URI SUITE COMPONENT...``) and ``.sources``
(deb822 stanzas with ``Types:``, ``URIs:``, ``Suites:`` and ``Enabled:`` fields). Comments
(``#`` to the end of the line) and files with other names are ignored. The sandbox's base image
is made from the first mirror that serves Debian's main archive (not the security archive).

>>> text = '''Types: deb
... # http://snapshot.debian.org/archive/debian/20250520T000000Z
... URIs: http://deb.debian.org/debian
... Suites: bookworm bookworm-updates
... Components: main
... '''
>>> [s.uri for s in parse_deb822(text)]
['http://deb.debian.org/debian']
>>> [s.uri for s in parse_one_line("# deb http://old/debian bookworm main\\ndeb [arch=amd64] http://m/debian bookworm main")]
['http://m/debian']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APT_ROOT = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    origin: str  # the file it came from


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].rstrip()


def parse_one_line(text: str, origin: str = "") -> list[AptSource]:
    """Sources of a ``sources.list``-style file (``deb`` lines only; ``deb-src`` is source code)."""
    out = []
    for raw in text.splitlines():
        words = _strip_comment(raw).split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=...] options
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            out.append(AptSource(words[0], (words[1],), origin))
    return out


def parse_deb822(text: str, origin: str = "") -> list[AptSource]:
    """Sources of a ``.sources`` file: stanzas separated by blank lines, continuation lines
    start with a space; a stanza with ``Enabled: no`` or without the ``deb`` type is skipped."""
    out = []
    stanzas: list[dict[str, str]] = [{}]
    key = None
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue  # a comment line, even inside a stanza
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            key = None
            continue
        if raw[0] in " \t" and key:  # continuation of the previous field
            stanzas[-1][key] += " " + _strip_comment(raw).strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        stanzas[-1][key] = _strip_comment(value).strip()
    for fields in stanzas:
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        suites = tuple(fields.get("suites", "").split())
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri, suites, origin))
    return out


def apt_sources(root: Path = APT_ROOT) -> list[AptSource]:
    """Every enabled binary source, in the order apt reads them."""
    out: list[AptSource] = []
    main = root / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(errors="replace"), str(main))
    folder = root / "sources.list.d"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            if path.suffix == ".list":
                out += parse_one_line(path.read_text(errors="replace"), str(path))
            elif path.suffix == ".sources":
                out += parse_deb822(path.read_text(errors="replace"), str(path))
    return out


def debian_mirror(root: Path = APT_ROOT) -> str | None:
    """The first http(s) mirror of Debian's main archive apt uses here, or ``None``."""
    for source in apt_sources(root):
        uri = source.uri.rstrip("/")
        if not uri.startswith(("http://", "https://")):
            continue
        if "security" in uri or any(s.endswith("-security") for s in source.suites):
            continue
        if uri.endswith("/debian") or "debian" in uri.rsplit("/", 1)[-1]:
            return uri
    return None
