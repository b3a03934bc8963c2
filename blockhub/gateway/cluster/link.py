"""The life of a node's tie to its cluster, as a machine: it decides when the node
resynchronises and when it counts as connected.

idle --start--> disconnected --up--> syncing --synced--> connected
                     ^                  |                    |
                     +------- down -----+-------- down ------+
any --stop--> stopped

Redis coming back is ``up``: the node then writes its whole table again and reads
every other node's (``ClusterNode.resync``); only when that is done is it
``connected``.  ``down`` (any of its Redis connections lost) starts the clock after
which other nodes' hubs, no longer confirmed, are forgotten (``ClusterNode.lost``).
"""

from typing import Protocol

from automat import TypeMachineBuilder

from blockhub import machines


class Inputs(Protocol):
    def start(self) -> None:
        "the node starts"

    def up(self) -> None:
        "every Redis connection is up and subscribed"

    def synced(self, generation: int) -> None:
        "a resynchronisation finished"

    def current(self) -> None:
        "the resynchronisation that finished is the latest one"

    def down(self) -> None:
        "a Redis connection was lost"

    def stop(self) -> None:
        "the node stops"


class Core(Protocol):
    state: str

    def resync(self, generation: int) -> None: ...
    def lost(self) -> None: ...
    def gained(self) -> None: ...


class Link:
    """The machine's own data: its state's name and the resync generation."""

    def __init__(self, core: Core):
        self.core = core
        self.state = "idle"
        self.generation = 0

    def changed(self, old: str, event: str, new: str) -> None:
        self.core.state = new
        machines.log_change("cluster", old, event, new, "cluster")


_builder = TypeMachineBuilder(Inputs, Link)
idle = _builder.state("idle")
disconnected = _builder.state("disconnected")
syncing = _builder.state("syncing")
connected = _builder.state("connected")
stopped = _builder.state("stopped")
_on = machines.on


@_on(idle, [Inputs.start], disconnected)
@_on(disconnected, [Inputs.down, Inputs.synced], disconnected)
@_on(connected, [Inputs.synced], connected)
@_on(syncing, [Inputs.up], syncing)
@_on(connected, [Inputs.up], connected)
@_on(idle, [Inputs.stop], stopped)
@_on(stopped, [Inputs.up, Inputs.down, Inputs.synced, Inputs.current, Inputs.stop], stopped)
def _nothing(machine: Inputs, link: Link, *args) -> None:
    """Late or repeated news changes nothing."""


@_on(disconnected, [Inputs.up], syncing)
def _resync(machine: Inputs, link: Link) -> None:
    link.generation += 1
    link.core.resync(link.generation)


@_on(syncing, [Inputs.synced], syncing)
def _maybe_done(machine: Inputs, link: Link, generation: int) -> None:
    if generation == link.generation:
        machine.current()


@_on(syncing, [Inputs.current], connected)
def _connected(machine: Inputs, link: Link) -> None:
    link.core.gained()


@_on(syncing, [Inputs.down], disconnected)
@_on(connected, [Inputs.down], disconnected)
def _lost(machine: Inputs, link: Link) -> None:
    link.generation += 1  # a resync still running is stale now
    link.core.lost()


@_on(disconnected, [Inputs.stop], stopped)
@_on(syncing, [Inputs.stop], stopped)
@_on(connected, [Inputs.stop], stopped)
def _stop(machine: Inputs, link: Link) -> None:
    link.generation += 1


Machine = _builder.build()
