"""The supervisor's restart policy, on an injected clock: at once, then a capped doubling while a worker keeps dying
young, a fresh start after a stable run, and never a point where it gives up."""

from __future__ import annotations

import signal

from zoo.server.workers import RestartPolicy, how_it_ended


def test_a_worker_that_keeps_dying_is_replaced_ever_more_slowly_up_to_the_cap_and_never_given_up():
    policy = RestartPolicy(base_s=0.5, cap_s=30.0, stable_s=60.0)
    now, delays = 0.0, []
    policy.start(0, now)
    for _ in range(12):  # far more than the ten restarts a minute after which the supervisor used to exit
        now += 1.0  # dies a second after each start
        delays.append(policy.delay(0, now))
        now += delays[-1]
        policy.start(0, now)
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]


def test_a_worker_that_served_for_a_while_is_replaced_at_once_and_workers_count_apart():
    policy = RestartPolicy(base_s=0.5, cap_s=30.0, stable_s=60.0)
    policy.start(0, 0.0)
    policy.start(1, 0.0)
    assert [policy.delay(0, 1.0), policy.delay(0, 2.0), policy.delay(0, 3.0)] == [0.0, 0.5, 1.0]
    assert policy.delay(1, 3.0) == 0.0  # worker 1's first death: its own count
    policy.start(0, 10.0)
    assert policy.delay(0, 70.0) == 0.0  # served 60 s: the count starts again
    policy.start(0, 70.0)
    assert policy.delay(0, 71.0) == 0.5


def test_how_a_worker_ended_names_the_signal_or_the_code():
    assert how_it_ended(-signal.SIGKILL) == "killed by SIGKILL"
    assert how_it_ended(-signal.SIGBUS) == "killed by SIGBUS"
    assert how_it_ended(3) == "exited with code 3"
    assert how_it_ended(-200) == "killed by signal 200"
