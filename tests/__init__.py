"""blockhub's trial suite: pure core, machines and protocols in memory, and integration
tests that run real twistd processes on 127.0.0.1."""

from hypothesis import HealthCheck, settings

# No timed assertions: Hypothesis's per-example deadline and its "generation is slow"
# check fail a test when the machine pauses (a shared, loaded CI machine took 1.3 s over
# one draw), which says nothing about the code.  The examples themselves stay.
settings.register_profile("blockhub", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("blockhub")
