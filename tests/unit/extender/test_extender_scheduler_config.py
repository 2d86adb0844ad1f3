"""The one packaged KubeSchedulerConfiguration and the weight arithmetic."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from crds import keys, sleeper_scoring
from extender import errors, scheduler_config


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
    assert sleeper_scoring.CERTAIN_HOT_SCORE - sleeper_scoring.LIKELY_HOT_MAX == 1


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


def _score_plugins(config: dict[str, object]) -> list[object]:
    profiles = config["profiles"]
    assert isinstance(profiles, list)
    return profiles[0].get("plugins", {}).get("score", {}).get("enabled", [])  # type: ignore[no-any-return]


def test_hint_weight_makes_one_hint_point_beat_every_other_plugin() -> None:
    others = sum(w for name, w in scheduler_config.DEFAULT_SCORE_PLUGIN_WEIGHTS.items() if name != "NodeAffinity")
    weight = scheduler_config.hint_weight()
    assert weight == 111
    # NodeAffinity normalises: the best node (score 10) gets 100, so one point is 10 normalised points.
    assert weight * 100 // sleeper_scoring.CERTAIN_HOT_SCORE > others * 100
    assert (weight - 1) * 100 // sleeper_scoring.CERTAIN_HOT_SCORE <= others * 100
    over = scheduler_config.extender_weight_over_hints()
    assert over == 1221
    assert over * 10 > (others + weight) * 100 >= (over - 1) * 10


def test_placement_hints_has_no_extender_and_weights_node_affinity() -> None:
    config = scheduler_config.render(None, placement="hints", leader_election=False)
    assert "extenders" not in config
    assert _score_plugins(config) == [{"name": "NodeAffinity", "weight": scheduler_config.hint_weight()}]
    assert config["percentageOfNodesToScore"] == 100


def test_placement_hints_and_extender_raises_the_extender_weight() -> None:
    config = scheduler_config.render("http://127.0.0.1:8890", placement="hints+extender")
    assert scheduler_config.extender_entry(config)["weight"] == scheduler_config.extender_weight_over_hints()
    assert _score_plugins(config) == [{"name": "NodeAffinity", "weight": scheduler_config.hint_weight()}]
    plain = scheduler_config.render("http://127.0.0.1:8890")
    assert _score_plugins(plain) == []
    assert scheduler_config.extender_entry(plain)["weight"] == 150


def test_bad_placement_and_missing_url_are_refused() -> None:
    with pytest.raises(ValueError, match="placement"):
        scheduler_config.render("http://x:1", placement="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="extender URL"):
        scheduler_config.render(None, placement="hints+extender")
    assert scheduler_config.PLACEMENTS == ("extender", "hints", "hints+extender")


@pytest.mark.parametrize("placement", list(scheduler_config.PLACEMENTS))
def test_every_node_is_scored_unless_sampling_is_asked_for(placement: str) -> None:
    url = "http://127.0.0.1:8890"
    assert scheduler_config.render(url, placement=placement)["percentageOfNodesToScore"] == 100  # type: ignore[arg-type]
    sampled = scheduler_config.render(url, placement=placement, percentage_of_nodes_to_score=0)  # type: ignore[arg-type]
    assert "percentageOfNodesToScore" not in sampled
    assert (
        yaml.safe_load(scheduler_config.render_yaml(url, percentage_of_nodes_to_score=30))["percentageOfNodesToScore"]
        == 30
    )
    # Nothing else changes with the sampling.
    full = scheduler_config.render(url, placement=placement)  # type: ignore[arg-type]
    del full["percentageOfNodesToScore"]
    assert sampled == full


@pytest.mark.parametrize("bad", [-1, 101])
def test_a_percentage_outside_0_to_100_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="percentage_of_nodes_to_score"):
        scheduler_config.render("http://127.0.0.1:8890", percentage_of_nodes_to_score=bad)


@pytest.mark.parametrize("placement", scheduler_config.PLACEMENTS)
def test_the_nominated_node_plugin_and_paced_binder_are_enabled_only_when_asked(placement: str) -> None:
    url = None if placement == "hints" else "http://127.0.0.1:1"
    plain = scheduler_config.render(url, placement=placement)  # type: ignore[arg-type]
    with_plugin = scheduler_config.render(url, placement=placement, nominated_node_plugin=True)  # type: ignore[arg-type]
    for profile in plain["profiles"]:
        assert "preFilter" not in (profile.get("plugins") or {})
        assert "bind" not in (profile.get("plugins") or {})
        assert "pluginConfig" not in profile
    for profile in with_plugin["profiles"]:
        assert profile["plugins"]["preFilter"] == {"enabled": [{"name": scheduler_config.NOMINATED_NODE_PLUGIN}]}
        assert profile["plugins"]["bind"] == {
            "disabled": [{"name": "DefaultBinder"}],
            "enabled": [{"name": scheduler_config.PACED_BINDER_PLUGIN}],
        }
        assert profile["pluginConfig"] == [
            {
                "name": scheduler_config.PACED_BINDER_PLUGIN,
                "args": {"maxInFlight": scheduler_config.DEFAULT_MAX_BINDS_IN_FLIGHT},
            }
        ]
    added = {"preFilter", "bind"}
    with_plugin_profiles = [
        {
            **{k: v for k, v in p.items() if k != "pluginConfig"},
            "plugins": {k: v for k, v in p["plugins"].items() if k not in added},
        }
        for p in with_plugin["profiles"]
    ]
    plain_profiles = [{**p, "plugins": p.get("plugins", {})} for p in plain["profiles"]]
    assert with_plugin_profiles == plain_profiles
    assert {k: v for k, v in with_plugin.items() if k != "profiles"} == {
        k: v for k, v in plain.items() if k != "profiles"
    }


def test_max_binds_in_flight_sets_the_paced_binder_or_keeps_the_default_binder() -> None:
    paced = scheduler_config.render(None, placement="hints", nominated_node_plugin=True, max_binds_in_flight=64)
    assert paced["profiles"][0]["pluginConfig"][0]["args"] == {"maxInFlight": 64}
    unpaced = scheduler_config.render(None, placement="hints", nominated_node_plugin=True, max_binds_in_flight=None)
    assert "bind" not in unpaced["profiles"][0]["plugins"]
    assert "pluginConfig" not in unpaced["profiles"][0]
    with pytest.raises(ValueError, match="max_binds_in_flight must be at least 1"):
        scheduler_config.render(None, placement="hints", nominated_node_plugin=True, max_binds_in_flight=0)


def test_the_go_plugins_use_our_plugin_names_annotation_key_and_default() -> None:
    """The Go sources are compiled outside this test run; their constants must match the Python ones."""
    sources = pathlib.Path(scheduler_config.__file__).parent / "scheduler_plugin"
    plugin = (sources / "plugin.go").read_text(encoding="utf-8")
    assert f'Name = "{scheduler_config.NOMINATED_NODE_PLUGIN}"' in plugin
    assert f'NominatedNodeAnnotation = "{keys.NOMINATED_NODE_ANNOTATION}"' in plugin
    binder = (sources / "binder.go").read_text(encoding="utf-8")
    assert f'PacedBinderName = "{scheduler_config.PACED_BINDER_PLUGIN}"' in binder
    assert f"DefaultMaxInFlight = {scheduler_config.DEFAULT_MAX_BINDS_IN_FLIGHT}" in binder
    main = (sources / "main.go").read_text(encoding="utf-8")
    assert "app.WithPlugin(PacedBinderName, NewPacedBinder)" in main
