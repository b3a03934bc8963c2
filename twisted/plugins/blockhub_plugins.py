"""twistd plugins ``blockhub-gateway`` and ``blockhub-hub``.

Each names its tap module (``Options`` and ``makeService``); twistd imports that module
only when its sub-command is used, so ``twistd --help`` stays fast and a broken import
in one service cannot hide the other.
"""

from twisted.application.service import ServiceMaker

gateway = ServiceMaker("blockhub gateway", "blockhub.gateway.tap",
                       "A blockhub gateway (hubs connect here)", "blockhub-gateway")
hub = ServiceMaker("blockhub hub", "blockhub.hub.tap",
                   "A blockhub hub (joins gateways, peers with hubs)", "blockhub-hub")
