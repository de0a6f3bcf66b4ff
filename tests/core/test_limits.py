import math

import pytest

from webxdc_rt.brokers.limits import BrokerLimits
from webxdc_rt.core.limits import (
    ChatLimits,
    DeliveryLimits,
    RealtimeLimits,
    UpdateLimits,
    require_non_negative,
    require_positive,
)
from webxdc_rt.dev.faults import FaultLimits, PeerFaults
from webxdc_rt.dev.limits import SimulatorLimits
from webxdc_rt.dev.proxy import ProxyLimits
from webxdc_rt.dev.traffic import TrafficLimits
from webxdc_rt.host.app import HostSettings
from webxdc_rt.model.sharing import HomeLimits
from webxdc_rt.stores.api import StoreLimits


@pytest.mark.parametrize("settings, name", [
    (RealtimeLimits, "send_items_burst"), (UpdateLimits, "interval_ms"),
    (ChatLimits, "messages_per_s"), (DeliveryLimits, "max_item_age_s"),
    (BrokerLimits, "connect_timeout_s"), (StoreLimits, "statement_timeout_s"),
    (HomeLimits, "poll_interval_s"), (SimulatorLimits, "max_peers"),
    (FaultLimits, "max_held_items"), (TrafficLimits, "max_events"),
    (ProxyLimits, "timeout_s"), (HostSettings, "control_per_s"),
])
@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan])
def test_every_limits_class_refuses_what_is_not_positive_in_the_same_words(settings, name,
                                                                            value):
    with pytest.raises(ValueError) as refused:
        settings(**{name: value})
    assert str(refused.value).startswith(f"{name} must be a finite number above 0")
    assert str(refused.value).endswith(f", got {value!r}")


@pytest.mark.parametrize("settings, name", [
    (BrokerLimits, "join_wait_s"), (HostSettings, "close_grace_s"),
    (PeerFaults, "latency_ms"),
])
def test_settings_that_may_be_zero_take_zero_and_refuse_below(settings, name):
    settings(**{name: 0})
    with pytest.raises(ValueError, match=f"^{name} must be a finite number, 0 or above, "
                                         "got -1$"):
        settings(**{name: -1})


def test_a_bound_above_is_named():
    with pytest.raises(ValueError, match="^connect_timeout_s must be a finite number above 0 "
                                         "and below 3600, got 3600$"):
        StoreLimits(connect_timeout_s=3600)


class Settings:
    count = 1
    flag = True
    text = "5"


@pytest.mark.parametrize("check", [require_positive, require_non_negative])
@pytest.mark.parametrize("name", ["flag", "text"])
def test_only_numbers_are_numbers(check, name):
    with pytest.raises(ValueError, match=f"^{name} must be a finite number"):
        check(Settings(), name)
    check(Settings(), "count")
