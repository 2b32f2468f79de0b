"""The slow-down warning: once, against the run's best window after the warm-up."""

from __future__ import annotations

from gen.training.throughput import ThroughputWatch


def test_a_window_three_times_slower_than_the_best_warns_once():
    watch = ThroughputWatch()
    assert watch.update(50, 20.0) is None  # the warm-up window is not a reference
    assert [watch.update(step, rate) for step, rate in [(100, 240.0), (150, 130.0), (200, 81.0)]] == [
        None
    ] * 3
    line = watch.update(250, 79.0)
    assert line.startswith("step 250: 79.0 images/s, less than 1/3 of this run's 240.0 before;")
    assert "gen --threads 1" in line
    assert watch.update(300, 10.0) is None  # said once


def test_the_warm_up_alone_never_warns_and_a_gpu_names_the_data_loader():
    watch = ThroughputWatch(cpu=False)
    assert watch.update(10, 1000.0) is None and watch.update(20, 100.0) is None  # nothing better seen yet
    assert watch.update(30, 400.0) is None
    assert "data loader" in watch.update(40, 100.0)
