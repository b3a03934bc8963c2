"""Where the cluster's Redis is: ``--cluster``'s URL turned into a Twisted client endpoint
description and a database number.  Pure, so the option parser can say what is wrong
before anything connects.

Two forms only: ``redis://HOST:PORT[/DB]`` (an IPv6 host in brackets) and
``unix:///PATH[?db=N]``.  A password never travels in the URL (it would show in ``ps``
and in logs): it comes from ``--cluster-password-file``.
"""

from urllib.parse import parse_qs, urlsplit

import attrs

DEFAULT_PORT = 6379


@attrs.frozen
class RedisURL:
    endpoint: str  # a clientFromString description: "tcp:host=...:port=..." or "unix:path=..."
    db: int
    shown: str  # the URL as given, safe to log (it holds no password)


def _refuse(text: str) -> ValueError:
    return ValueError(f"--cluster wants redis://HOST:PORT[/DB] or unix:///PATH, not {text!r}")


def _escape(value: str) -> str:
    """Quote what endpoint descriptions treat specially (``\\``, ``:`` and ``=``)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _db(text: str, url: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise ValueError(f"--cluster: the database in {url!r} is not a number ({text!r})")
    return int(text)


def parse_redis_url(url: str) -> RedisURL:
    """``url`` as a ``RedisURL``, or ``ValueError`` with one line saying what is wrong."""
    if not url.startswith("unix:") and "@" in url.partition("?")[0]:
        # Checked first, so that no message below repeats a password.
        raise ValueError("--cluster: put no password in the URL; "
                         "give it with --cluster-password-file")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse(url) from None
    if parts.fragment:
        raise _refuse(url)
    if parts.scheme == "redis":
        host = parts.hostname
        if not host or parts.query:
            raise _refuse(url)
        path = parts.path.strip("/")
        db = _db(path, url) if path else 0
        description = f"tcp:host={_escape(host)}:port={port or DEFAULT_PORT}"
        return RedisURL(endpoint=description, db=db, shown=url)
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise _refuse(url)
        db = 0
        if parts.query:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
            if set(query) != {"db"} or len(query["db"]) != 1:
                raise _refuse(url)
            db = _db(query["db"][0], url)
        return RedisURL(endpoint=f"unix:path={_escape(parts.path)}", db=db, shown=url)
    raise _refuse(url)
