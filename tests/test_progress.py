"""tools/progress.py, the progress of ``make fuzz`` and ``make flood``: one line
rewritten in place on a terminal, a line each tenth otherwise, and the time left."""

import io

from twisted.trial.unittest import SynchronousTestCase

from tools.progress import Progress, duration


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ProgressTests(SynchronousTestCase):
    def make(self, tty):
        clock, out = FakeClock(), io.StringIO()
        return Progress("work", 200, stream=out, clock=clock, tty=tty), clock, out

    def test_durations(self):
        self.assertEqual([duration(s) for s in (0, 42.4, 185, 7620, -3)],
                         ["0s", "42s", "3m05s", "2h07m", "0s"])

    def test_time_left_at_the_pace_so_far(self):
        progress, clock, _ = self.make(tty=False)
        self.assertEqual(progress.line(0), "work:   0%  time left unknown")
        clock.now += 30
        self.assertEqual(progress.line(50, "a note"), "work:  25%  1m30s left  a note")
        self.assertEqual(progress.line(200), "work: 100%  done in 30s")

    def test_a_log_gets_a_line_each_tenth(self):
        progress, clock, out = self.make(tty=False)
        for done in range(1, 201):
            clock.now += 1
            progress.update(done)
        progress.finish()
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 10, lines)
        self.assertTrue(lines[0].startswith("work:  10%"), lines[0])
        self.assertEqual(lines[-1], "work: 100%  done in 3m20s")
        self.assertNotIn("\r", out.getvalue())

    def test_a_terminal_gets_one_line_rewritten_in_place(self):
        progress, clock, out = self.make(tty=True)
        progress.update(10, "a long note here")
        progress.update(20)
        progress.say("something to say")
        progress.update(30)
        progress.finish()
        text = out.getvalue()
        self.assertEqual(text.count("\n"), 2, repr(text))
        self.assertTrue(text.endswith("\rwork: 100%  done in 0s\n"), repr(text))
        # A shorter line blanks what is left of a longer one.
        second = text.split("\r")[2]
        self.assertEqual(len(second), len("work:   5%  0s left  a long note here"))
        self.assertIn("\rsomething to say\n", text)
