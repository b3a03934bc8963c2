"""A small helper shared by every Automat machine: expose the current state by name and
log each transition with structured fields, so operators and tests can see it."""

from twisted.logger import Logger

log = Logger()


def watch(machine_owner, initial: str, what: str, quiet: bool = False,
          on_change=None) -> None:
    """Keep ``machine_owner.state`` equal to the machine's current state name.

    ``machine_owner`` must define ``_setTrace = _machine._setTrace`` in its class.
    ``on_change(owner, old, new)`` runs on every change of state, before the outputs.
    """
    machine_owner.state = initial

    def tracer(old: str, event: str, new: str):
        machine_owner.state = new
        if old != new:
            if not quiet:
                log.info("{what}: {old} --{event}--> {new}", what=what, old=old,
                         event=event, new=new, machine=type(machine_owner).__name__)
            if on_change is not None:
                on_change(machine_owner, old, new)
        return None

    machine_owner._setTrace(tracer)
