"""The NAT lab (docs/nat.md): real gateways and hubs in Linux network namespaces behind
nftables NAT routers.  ``lab.py`` builds and removes the network, ``daemons.py`` runs
the integration harness's daemons inside it, ``case.py`` is the base test case; the
``test_*`` modules are the scenarios (``make netlab``)."""
