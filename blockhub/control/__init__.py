"""The local control socket: AMP over a 0600 UNIX socket in the data directory, through
which the ``blockhub`` command asks a running daemon questions and gives it orders."""
