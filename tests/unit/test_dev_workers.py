"""`make run` with several worker processes: each gets metrics ports of its own."""

from starter.dev.stack import ROOT, _worker_metrics_env
from starter.runtime.settings import Settings


def test_each_worker_gets_the_configured_ports_shifted_by_two() -> None:
    settings = Settings(
        worker_metrics_address="127.0.0.1:9464", worker_app_metrics_address="0.0.0.0:9465"
    )

    ports = [_worker_metrics_env(settings, n) for n in range(3)]

    assert ports == [
        {
            "TRADING_WORKER_METRICS_ADDRESS": "127.0.0.1:9464",
            "TRADING_WORKER_APP_METRICS_ADDRESS": "0.0.0.0:9465",
        },
        {
            "TRADING_WORKER_METRICS_ADDRESS": "127.0.0.1:9466",
            "TRADING_WORKER_APP_METRICS_ADDRESS": "0.0.0.0:9467",
        },
        {
            "TRADING_WORKER_METRICS_ADDRESS": "127.0.0.1:9468",
            "TRADING_WORKER_APP_METRICS_ADDRESS": "0.0.0.0:9469",
        },
    ]


def test_a_metrics_endpoint_switched_off_stays_off_for_every_worker() -> None:
    settings = Settings(worker_metrics_address="", worker_app_metrics_address="127.0.0.1:9465")

    assert _worker_metrics_env(settings, 1) == {
        "TRADING_WORKER_APP_METRICS_ADDRESS": "127.0.0.1:9467"
    }


def test_the_stack_starts_the_worker_of_this_checkout() -> None:
    assert (ROOT / "worker.py").is_file()
