"""One hub's connection to the gateway, as an Automat machine.

greeted (hello sent) -> admitted (join accepted) -> closed.  Only ``join`` is allowed
before admission; ``update`` and ``relay`` only after.  Anything else is impossible and
raises, which the protocol turns into a protocol error for that connection.
"""

from automat import MethodicalMachine

from blockhub.machines import watch


class GatewaySession:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace

    def __init__(self, conn, gateway):
        self.conn = conn
        self.gateway = gateway
        watch(self, "greeted", "gateway session", quiet=True)

    @_machine.state(initial=True)
    def greeted(self):
        "hello sent; waiting for the hub's signed HubInfo (and network key proof)"

    @_machine.state()
    def admitted(self):
        "in the presence table; its HubInfo is shared"

    @_machine.state()
    def closed(self):
        "the connection is gone"

    @_machine.input()
    def join(self, info):
        "a valid join arrived"

    @_machine.input()
    def update(self, info):
        "a valid HubInfo update arrived"

    @_machine.input()
    def relay(self, message):
        "a sealed handshake to relay"

    @_machine.input()
    def lost(self, reason):
        "the connection closed"

    @_machine.output()
    def _admit(self, info):
        self.gateway.presence.join(self.conn, info)

    @_machine.output()
    def _update(self, info):
        self.gateway.presence.update(self.conn, info)

    @_machine.output()
    def _relay(self, message):
        self.gateway.relay(self.conn, message)

    @_machine.output()
    def _leave(self, reason):
        self.gateway.presence.leave(self.conn, reason)

    greeted.upon(join, enter=admitted, outputs=[_admit])
    greeted.upon(lost, enter=closed, outputs=[])
    admitted.upon(update, enter=admitted, outputs=[_update])
    admitted.upon(relay, enter=admitted, outputs=[_relay])
    admitted.upon(lost, enter=closed, outputs=[_leave])
    closed.upon(lost, enter=closed, outputs=[])
