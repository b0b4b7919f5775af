"""The busy-machine hint: printed only when several intra-op threads share fully loaded cores."""

from __future__ import annotations

from hmx.cpu_threads import busy_cpu_hint


def test_busy_cpu_hint_names_the_load_and_the_remedy():
    hint = busy_cpu_hint(threads=2, load=6.0, cores=2)
    assert hint is not None and "load average 6.0 on 2 cores" in hint and "OMP_NUM_THREADS=1" in hint


def test_no_hint_on_a_quiet_machine_or_with_one_thread():
    assert busy_cpu_hint(threads=2, load=0.5, cores=2) is None
    assert busy_cpu_hint(threads=1, load=9.0, cores=2) is None
