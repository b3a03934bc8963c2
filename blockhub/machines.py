"""Small helpers shared by the Automat machines: expose the current state by name and
log each transition with structured fields, so operators and tests can see it.

``on`` registers behaviours of a typed machine (``TypeMachineBuilder``, which has no
tracer and no state accessor) so that each transition first records the name of the
state it enters in ``core.state`` and tells the core of the change.
"""

import functools

from twisted.logger import Logger

log = Logger()


def on(old, inputs, new):
    """Decorate a behaviour of a typed machine: run it for each of ``inputs`` in state
    ``old``, entering ``new`` (the same state: a loop), after writing ``new``'s name to
    the core's ``state``.  A core that defines ``changed(old, event, new)`` hears of
    every change of state there, before the behaviour runs (its log and persistence)."""
    def register(behaviour):
        for one in inputs:
            upon = old.upon(one)
            (upon.loop() if new is old else upon.to(new))(
                _recording(behaviour, one.__name__, new.name))
        return behaviour
    return register


def _recording(behaviour, event: str, new: str):
    @functools.wraps(behaviour)
    def run(machine, core, *args):
        old, core.state = core.state, new
        if old != new and hasattr(core, "changed"):
            core.changed(old, event, new)
        return behaviour(machine, core, *args)
    return run


def log_change(what: str, old: str, event: str, new: str, machine: str) -> None:
    """The transition log line every machine that logs its changes writes."""
    log.info("{what}: {old} --{event}--> {new}", what=what, old=old, event=event, new=new,
             machine=machine)
