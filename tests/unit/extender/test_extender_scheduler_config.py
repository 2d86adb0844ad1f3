"""The one packaged KubeSchedulerConfiguration and the weight arithmetic."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from extender import errors, scheduler_config, scoring


def test_render_fills_in_the_extender() -> None:
    config = scheduler_config.render("http://127.0.0.1:8890/", kubeconfig="/k", leader_election=False)
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["profiles"] == [{"schedulerName": scheduler_config.SCHEDULER_NAME}]
    assert config["clientConnection"] == {"kubeconfig": "/k"}
    assert config["leaderElection"]["leaderElect"] is False
    entry = scheduler_config.extender_entry(config)
    assert entry["urlPrefix"] == "http://127.0.0.1:8890"
    assert entry["enableHTTPS"] is False
    assert entry["nodeCacheCapable"] is True
    assert entry["ignorable"] is True
    assert entry["managedResources"] == [{"name": "nvidia.com/gpu", "ignoredByScheduler": False}]
    assert (entry["filterVerb"], entry["prioritizeVerb"]) == ("filter", "prioritize")


def test_https_url_turns_on_https_and_the_template_is_unchanged() -> None:
    entry = scheduler_config.extender_entry(scheduler_config.render("https://fma-extender:8890"))
    assert entry["enableHTTPS"] is True
    assert "tlsConfig" not in entry
    trusted = scheduler_config.render("https://fma-extender:8890", ca_file="/etc/fma/ca.crt")
    assert scheduler_config.extender_entry(trusted)["tlsConfig"] == {"caFile": "/etc/fma/ca.crt"}
    with pytest.raises(ValueError, match="https"):
        scheduler_config.render("http://fma-extender:8890", ca_file="/etc/fma/ca.crt")
    assert scheduler_config.extender_entry(scheduler_config.template())["urlPrefix"] == scheduler_config.URL_PLACEHOLDER


def test_weight_makes_one_point_beat_every_default_plugin() -> None:
    weight = scheduler_config.extender_entry(scheduler_config.template())["weight"]
    assert weight >= scheduler_config.minimum_weight() == 131
    # certain hot vs the best likely-hot node: one extender point, worth weight x 10
    one_point = weight * 10
    assert one_point > sum(scheduler_config.DEFAULT_SCORE_PLUGIN_WEIGHTS.values()) * 100
    assert scoring.CERTAIN_HOT_SCORE - scoring.LIKELY_HOT_MAX == 1


def test_the_file_is_package_data_and_documented() -> None:
    text = scheduler_config.template_text()
    assert scheduler_config.URL_PLACEHOLDER in text
    assert isinstance(yaml.safe_load(text), dict)
    doc = pathlib.Path(__file__).resolve().parents[3] / "docs" / "extender.md"
    assert "weight" in doc.read_text()


def test_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        scheduler_config.render("127.0.0.1:8890")


def test_entry_must_be_single() -> None:
    with pytest.raises(errors.BadSchedulerConfig):
        scheduler_config.extender_entry({"extenders": []})
