"""blockhub's trial suite: pure core, machines and protocols in memory, and integration
tests that run real twistd processes on 127.0.0.1."""
