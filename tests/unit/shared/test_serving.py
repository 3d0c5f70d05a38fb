from __future__ import annotations

from shared.serving import gunicorn_args, layout


def test_identity_runs_gevent_workers_two_per_core_plus_one_at_most_nine() -> None:
    assert layout("identity", cpus=2).args() == [
        "--worker-class",
        "gevent",
        "--workers",
        "5",
        "--keep-alive",
        "75",
        "--logger-class",
        "shared.gunicorn_logging.JsonLogger",
    ]
    assert layout("identity", cpus=1).workers == 3
    assert layout("identity", cpus=64).workers == 9


def test_the_others_run_two_gevent_workers() -> None:
    for service in ("crm", "routing"):
        assert layout(service, cpus=16).args() == [
            "--worker-class",
            "gevent",
            "--workers",
            "2",
            "--keep-alive",
            "75",
            "--logger-class",
            "shared.gunicorn_logging.JsonLogger",
        ]


def test_a_worker_count_overrides_the_default_but_not_the_class() -> None:
    assert gunicorn_args("identity", 2)[:4] == ["--worker-class", "gevent", "--workers", "2"]
    assert gunicorn_args("routing", 1)[:4] == ["--worker-class", "gevent", "--workers", "1"]
