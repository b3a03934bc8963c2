"""A small helper shared by every Automat machine: expose the current state by name and
log each transition with structured fields, so operators and tests can see it."""

from twisted.logger import Logger

log = Logger()


def watch(machine_owner, initial: str, what: str, quiet: bool = False) -> None:
    """Keep ``machine_owner.state`` equal to the machine's current state name.

    ``machine_owner`` must define ``_setTrace = _machine._setTrace`` in its class.
    """
    machine_owner.state = initial

    def tracer(old: str, event: str, new: str):
        machine_owner.state = new
        if not quiet and old != new:
            log.info("{what}: {old} --{event}--> {new}", what=what, old=old, event=event,
                     new=new, machine=type(machine_owner).__name__)
        return None

    machine_owner._setTrace(tracer)
