"""The slow-down warning: once, after two slow windows, against the run's best window after the warm-up."""

from __future__ import annotations

from gen.training.throughput import ThroughputWatch


def line(step: int, rate: float, time: float) -> dict:
    return {"step": step, "images_per_s": rate, "time": time}


def test_two_windows_three_times_slower_than_the_best_warn_once():
    watch = ThroughputWatch()
    rates = [20.0, 240.0, 130.0, 81.0, 79.0, 70.0, 10.0, 10.0]  # the first is the warm-up
    said = [watch.update(line(50 * (i + 1), r, 5.0 * i)) for i, r in enumerate(rates)]
    assert said[:5] == [None] * 5  # 79 is the first slow window: one is not enough
    assert said[5].startswith("step 300: 70.0 images/s, less than 1/3 of this run's 240.0 before;")
    assert "gen --threads 1" in said[5]
    assert said[6:] == [None, None]  # said once


def test_a_fast_window_between_slow_ones_starts_the_count_again():
    watch = ThroughputWatch()
    rates = [20.0, 240.0, 70.0, 200.0, 70.0, 200.0]
    assert [watch.update(line(i, r, 5.0 * i)) for i, r in enumerate(rates)] == [None] * 6


def test_windows_shorter_than_a_second_say_nothing_and_a_gpu_names_the_data_loader():
    watch = ThroughputWatch()
    rates = [10.0, 3000.0, 600.0, 500.0, 400.0]  # a tiny model logging every step: noise
    assert [watch.update(line(i, r, 0.01 * i)) for i, r in enumerate(rates)] == [None] * 5
    gpu = ThroughputWatch(cpu=False)
    said = [gpu.update(line(i, r, 5.0 * i)) for i, r in enumerate([10.0, 1000.0, 100.0, 100.0])]
    assert "data loader" in said[3]
