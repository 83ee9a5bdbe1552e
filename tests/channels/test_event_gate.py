"""bot.channels.socketio.EventGate: a socket's typing and presence events cannot flood Redis."""

from bot.channels.socketio import EventGate


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_repeated_state_is_dropped_but_a_change_passes():
    clock = Clock()
    gate = EventGate(repeat_s=2.0, per_second=4, clock=clock)
    assert gate.allow("s1", "typing", True)
    assert not gate.allow("s1", "typing", True)  # still typing: nothing new to record
    assert gate.allow("s1", "typing", False)  # stopped: recorded at once
    clock.now += 2.5
    assert gate.allow("s1", "typing", False)  # the same state after repeat_s refreshes the TTL


def test_a_burst_of_alternating_states_is_capped_per_second():
    clock = Clock()
    gate = EventGate(repeat_s=2.0, per_second=4, clock=clock)
    passed = sum(gate.allow("s1", "typing", n % 2 == 0) for n in range(1000))
    assert passed == 4
    clock.now += 1.0
    assert gate.allow("s1", "typing", True) or gate.allow("s1", "typing", False)


def test_sockets_are_gated_separately_and_forgotten_on_disconnect():
    clock = Clock()
    gate = EventGate(repeat_s=2.0, per_second=1, clock=clock)
    assert gate.allow("s1", "presence", True)
    assert gate.allow("s2", "presence", True)
    assert not gate.allow("s1", "presence", True)
    gate.forget("s1")
    assert gate.allow("s1", "presence", True)
    assert not gate._last.get(("s9", "presence"))
