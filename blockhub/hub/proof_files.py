"""The proofs behind a hub's alarms, as files in its data directory (0600)."""

from pathlib import Path

from twisted.logger import Logger

from blockhub.keystore import write_json

log = Logger()


class ProofFiles:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def write(self, name: str, document: dict) -> str | None:
        """``name``'s path once it holds ``document``: the first proof of a name stands
        (it is all one needs); None when it cannot be written."""
        path = self.directory / name
        if not path.exists():
            try:
                write_json(path, document, 1)
            except OSError as e:
                log.error("cannot write the proof {path}: {error}", path=str(path),
                          error=str(e))
                return None
        return str(path)
