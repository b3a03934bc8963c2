"""Text the CLI prints: one escaping rule for everything a peer, a gateway or a daemon
could have chosen (HubInfo names, notes, messages, reasons, addresses, errors).

A terminal obeys what it is sent: a newline in a hub's name forges a row, an ESC
starts a control sequence, a lone surrogate cannot even be written.  So every
character that is not printable (control characters C0 and C1, format characters
such as bidirectional overrides, line and paragraph separators, surrogates) is shown
as a Python-style escape, and so is the backslash itself, so that an escape in the
output always means an escaped character.  ``--json`` output is JSON, escaped by its
encoder, and never goes through here.
"""


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value) -> str:
    """``value`` as text that is safe to print on one line of a terminal."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(map(_escape, text))


def say(stdout, line: str) -> None:
    """Print ``line`` escaped, as exactly one line: nothing interpolated into it can end
    the line or reach the terminal as a control sequence (our own text is printable)."""
    print(printable(line), file=stdout)
