"""Python producers apply the flusher's owner and mode rules to a segment
they did not create, and the exception classes print as ringflush's."""

import os

import pytest

import ringflush


def test_the_exceptions_print_as_ringflushs():
    assert repr(ringflush.RingflushError) == "<class 'ringflush.RingflushError'>"
    assert ringflush.RingFullError.__module__ == "ringflush"
    assert issubclass(ringflush.RingFullError, ringflush.RingflushError)


def test_a_segment_writable_by_others_is_refused_unless_allowed(shm):
    ringflush.RingHandler(shm)  # creates it, 0600
    os.chmod("/dev/shm" + shm, 0o666)
    with pytest.raises(ringflush.RingflushError, match=r"writable by group or others \(mode 666\)"):
        ringflush.RingHandler(shm)
    # A shared setup says so explicitly.
    ringflush.RingHandler(shm, mode=0o666)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a segment's owner needs root")
def test_a_segment_another_user_owns_is_refused_unless_allowed(shm):
    ringflush.RingHandler(shm)
    os.chown("/dev/shm" + shm, 4321, 4321)
    with pytest.raises(ringflush.RingflushError, match="owned by uid 4321"):
        ringflush.RingHandler(shm)
    ringflush.RingHandler(shm, allow_foreign=True)


def test_an_invalid_mode_is_a_clear_error(shm):
    with pytest.raises(ValueError, match="invalid mode"):
        ringflush.RingHandler(shm, mode=0o1777)
