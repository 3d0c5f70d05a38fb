from __future__ import annotations

from shared.serving import gunicorn_args, layout


def test_identity_runs_sync_workers_two_per_core_plus_one_at_most_nine() -> None:
    assert layout("identity", cpus=2).args() == ["--worker-class", "sync", "--workers", "5"]
    assert layout("identity", cpus=1).workers == 3
    assert layout("identity", cpus=64).workers == 9


def test_the_others_run_two_gthread_workers_of_four_threads() -> None:
    for service in ("crm", "routing"):
        assert layout(service, cpus=16).args() == [
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            "--threads",
            "4",
            "--keep-alive",
            "75",
        ]


def test_a_worker_count_overrides_the_default_but_not_the_class() -> None:
    assert gunicorn_args("identity", 2) == ["--worker-class", "sync", "--workers", "2"]
    assert gunicorn_args("routing", 1)[:4] == ["--worker-class", "gthread", "--workers", "1"]
