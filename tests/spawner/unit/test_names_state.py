"""Saved names follow KubeSpawner's get_state/load_state rules: its hub database keeps working."""

from __future__ import annotations

import pytest

from tests.spawner.unit.golden import make_pair, names

pytestmark = pytest.mark.usefixtures("reference_kubespawner")

NAME_KEYS = ("kubespawner_version", "pod_name", "namespace", "dns_name", "pvc_name")


def _naming_part(state: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state.items() if k in NAME_KEYS}


@pytest.mark.parametrize("pvc_exists", [False, True])
async def test_names_state_has_kubespawners_keys_and_values(pvc_exists: bool) -> None:
    pair = make_pair({}, username="User.Name+1", server_name="srv")
    pair.reference._pvc_exists = pvc_exists
    pair.ours._pvc_exists = pvc_exists
    assert pair.ours.names_state() == _naming_part(pair.reference.get_state())


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"pod_name": "old-pod", "namespace": "old-ns", "dns_name": "old.dns"},
        {"kubespawner_version": "7.1.0", "pvc_name": "claim-old"},
        {"pod_name": "jupyter-mock-40name", "pvc_name": "claim-mock-40name"},
    ],
)
@pytest.mark.parametrize("remember_pvc_name", [True, False])
async def test_loading_saved_names_behaves_like_kubespawner(
    state: dict[str, str], remember_pvc_name: bool
) -> None:
    pair = make_pair({"remember_pvc_name": remember_pvc_name})
    pair.reference.load_state(dict(state))
    pair.ours.load_names_state(dict(state))
    assert names(pair.ours) == names(pair.reference)
    assert pair.ours._pvc_exists == pair.reference._pvc_exists
    assert pair.ours._state_kubespawner_version == pair.reference._state_kubespawner_version


async def test_a_kubespawner_6_state_looks_for_the_legacy_pvc_name() -> None:
    pair = make_pair({})
    pair.ours.load_names_state({"pod_name": "jupyter-mock-40name"})
    assert pair.ours.legacy_pvc_name() == "claim-mock-40name"
    assert pair.ours.pvc_name == "claim-mock-name---6241db84"


@pytest.mark.parametrize(
    ("config", "state"),
    [
        ({}, {"kubespawner_version": "7.1.0"}),
        ({}, {}),
        ({"handle_legacy_names": False}, {"pod_name": "x"}),
        ({"remember_pvc_name": False}, {"pod_name": "x"}),
        ({}, {"pod_name": "x", "pvc_name": "claim-x"}),
    ],
)
async def test_no_legacy_lookup_when_kubespawner_would_not(
    config: dict[str, bool], state: dict[str, str]
) -> None:
    pair = make_pair(config)
    pair.ours.load_names_state(state)
    assert pair.ours.legacy_pvc_name() is None


async def test_legacy_lookup_is_skipped_when_names_agree() -> None:
    pair = make_pair({}, username="alice")
    pair.ours.load_names_state({"pod_name": "jupyter-alice"})
    assert pair.ours.legacy_pvc_name() is None


async def test_clearing_resets_pod_and_dns_names_but_keeps_the_claim() -> None:
    pair = make_pair({})
    pair.ours.load_names_state({"pod_name": "old", "dns_name": "old.dns", "pvc_name": "claim-keep"})
    pair.reference.load_state({"pod_name": "old", "dns_name": "old.dns", "pvc_name": "claim-keep"})
    pair.ours.reset_transient_names()
    pair.reference.clear_state()
    assert names(pair.ours) == names(pair.reference)


async def test_named_servers_share_the_default_claim_unless_the_template_says_otherwise() -> None:
    shared = make_pair({"pvc_name_template": "claim-{username}"}, server_name="gpu")
    assert shared.ours.pvc_is_shared()
    own = make_pair({}, server_name="gpu")
    assert not own.ours.pvc_is_shared()
    assert not make_pair({"pvc_name_template": "claim-{username}"}).ours.pvc_is_shared()


async def test_a_kubespawner_6_state_saved_before_a_start_keeps_the_legacy_claim_lookup() -> None:
    # A server KubeSpawner 6 started is stopped after the migration: JupyterHub saves the state
    # (clear_state, get_state) and drops the spawner; the next start loads that saved state.
    # KubeSpawner 7.1 saves its own version there and the next start creates a new, empty claim
    # beside the user's legacy one (KubeSpawner #937); the saved state must keep saying "unknown".
    pair = make_pair({})
    six = {"pod_name": "jupyter-mock-40name", "namespace": "jhub", "dns_name": "x.jhub"}
    pair.reference.load_state(dict(six))
    pair.reference.clear_state()
    kubespawner_saved = pair.reference.get_state()
    forgetful = make_pair({}).reference
    forgetful.load_state(kubespawner_saved)
    # KubeSpawner 7.1's next start would skip the lookup (version 7.1.0, claim not known)
    assert forgetful._state_kubespawner_version == "7.1.0" and not forgetful._pvc_exists

    pair.ours.load_names_state(dict(six))
    pair.ours.reset_transient_names()
    saved = pair.ours.names_state()
    assert saved["kubespawner_version"] == "unknown" and "pvc_name" not in saved, saved

    again = make_pair({}).ours
    again.load_names_state(saved)
    assert again.legacy_pvc_name() == "claim-mock-40name"
    reference = make_pair({}).reference  # KubeSpawner 7.1 would look for it too
    reference.load_state(saved)
    assert reference._state_kubespawner_version == "unknown" and not reference._pvc_exists


@pytest.mark.parametrize(
    ("username", "config"),
    [("alice", {}), ("mock@name", {"handle_legacy_names": False})],
)
async def test_a_kubespawner_6_state_without_a_legacy_lookup_to_do_is_saved_as_7_1(
    username: str, config: dict[str, bool]
) -> None:
    spawner = make_pair(config, username=username).ours
    spawner.load_names_state({"pod_name": "jupyter-x"})
    assert spawner.names_state()["kubespawner_version"] == "7.1.0"


async def test_once_the_claim_is_known_the_state_says_7_1_and_names_it() -> None:
    pair = make_pair({})
    pair.ours.load_names_state({"pod_name": "jupyter-mock-40name"})
    pair.ours.pvc_name, pair.ours._pvc_exists = "claim-mock-40name", True  # what start found
    saved = pair.ours.names_state()
    assert saved["kubespawner_version"] == "7.1.0" and saved["pvc_name"] == "claim-mock-40name"
    reference = make_pair({}).reference
    reference.load_state(saved)  # and KubeSpawner 7.1 reads it back as the same claim
    assert (reference.pvc_name, reference._pvc_exists) == ("claim-mock-40name", True)
