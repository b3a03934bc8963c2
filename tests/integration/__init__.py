"""Integration tests: real ``twistd`` gateways and hubs on 127.0.0.1, driven through the
``blockhub`` CLI.  See ``harness.py``."""
