"""Loading the policy: safe defaults, the YAML 1.2 reading, and errors naming path, line and choices."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.policy import (
    ACTION_IDS,
    BUNDLED_DEFAULT,
    DEFAULT_ACTIONS,
    PolicyError,
    load_policy,
    parse_policy,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "example.yaml"
VALID_ACTIONS = ", ".join(ACTION_IDS)


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text), source="policy.yaml")
    return [str(p) for p in caught.value.problems]


def test_an_empty_file_is_the_safe_default() -> None:
    policy = parse_policy("")
    scope = policy.default
    assert (scope.name, scope.mode, scope.match) == ("default", "dry-run", None)
    assert dict(scope.actions) == DEFAULT_ACTIONS
    assert scope.actions["set-os-node-selector"] == "off"
    assert scope.actions["set-pull-policy-if-not-present"] == "off"
    assert scope.actions["replace-kubelet-identity"] == "off"
    off = ("set-", "replace-kubelet-identity")
    assert {v for k, v in scope.actions.items() if not k.startswith(off)} == {"ticket"}
    assert scope.rate_limit_per_hour == 3
    assert scope.cooldown == timedelta(minutes=30)
    assert scope.expiry_windows == (30, 14, 7, 1)
    assert (scope.maintenance_windows, scope.tickets, policy.scopes) == ((), None, ())
    assert parse_policy("# only a comment\n").default == scope


def test_the_bundled_default_is_the_built_in_default() -> None:
    bundled = load_policy(None)
    assert bundled.source == str(BUNDLED_DEFAULT)
    assert bundled.default == parse_policy("").default
    assert load_policy("") == bundled


def test_the_documented_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert [s.name for s in policy.scopes] == ["prod", "sandbox"]
    prod, sandbox = policy.scopes
    assert prod.mode == "enforce"
    assert prod.actions["attach-acr"] == "auto"
    assert prod.actions["rotate-sp-secret"] == "ticket"  # inherited from the top level
    assert prod.cooldown == timedelta(minutes=60)
    assert prod.tickets is not None
    assert prod.tickets.provider == "azure-devops"
    assert sandbox.rate_limit_per_hour == 3  # inherited
    assert sandbox.tickets is not None
    assert dict(sandbox.tickets.route) == {
        "urlSetting": "SANDBOX_TEAMS_WEBHOOK_URL",
        "format": "teams",
    }


def test_yaml_is_read_as_1_2_off_and_times_stay_words() -> None:
    policy = parse_policy(
        """
        actions: {attach-acr: off, reconcile-cluster: auto}
        maintenanceWindows:
          - {days: [sat], start: 22:00, end: 23:30}
        """.replace("        ", "")
    )
    assert policy.default.actions["attach-acr"] == "off"
    [window] = policy.default.maintenance_windows
    assert (window.start, window.end, window.timezone) == (22 * 60, 23 * 60 + 30, "UTC")


def test_a_wrong_enum_names_the_path_line_and_choices() -> None:
    assert problems(
        """\
        scopes:
          - name: prod
            match: {resourceGroups: [rg-prod-*]}
          - name: dev
            match: {tags: {env: dev}}
            actions:
              attach-acr: sometimes
        """
    ) == [
        "scopes[1].actions.attach-acr (line 7): 'sometimes' is not one of 'auto', 'ticket', 'off'"
    ]


def test_an_unknown_action_lists_the_valid_ones() -> None:
    assert problems("actions:\n  attach-acrr: auto\n") == [
        f"actions.attach-acrr (line 2): unknown action 'attach-acrr'; valid actions: {VALID_ACTIONS}"
    ]


def test_wrong_types_and_unknown_keys() -> None:
    assert problems(
        """\
        mode: enforce
        rateLimit: {perClusterPerHour: three}
        cooldown: {minutes: 30, seconds: 5}
        expiryWindows: 30
        scopes:
          - name: prod
            match: {subscriptions: 9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c}
            colour: blue
        """
    ) == [
        "rateLimit.perClusterPerHour (line 2): expected an integer, got 'three'",
        "cooldown.seconds (line 3): unknown key 'seconds'; valid keys: minutes",
        "expiryWindows (line 4): expected a list, got 30",
        "scopes[0].match.subscriptions (line 7): expected a list, got '9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c'",
        "scopes[0].colour (line 8): unknown key 'colour'; valid keys: name, match, mode, actions, "
        "rateLimit, cooldown, maintenanceWindows, expiryWindows, tickets",
    ]


def test_bad_times_days_and_zones() -> None:
    assert problems(
        """\
        maintenanceWindows:
          - days: [mon, funday]
            start: 25:00
            end: 04:00
            timezone: Europe/Amsterdan
          - start: 22:00
            end: 22:00
          - start: 9:00
            end: 17:00
        """
    ) == [
        "maintenanceWindows[0].days[1] (line 2): 'funday' is not one of 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'",
        "maintenanceWindows[0].start (line 3): '25:00' is not a time of day HH:MM (00:00 to 23:59)",
        "maintenanceWindows[2].start (line 8): '9:00' is not a time of day HH:MM (00:00 to 23:59)",
    ]
    # Semantic checks run once the shape is right.
    assert problems(
        """\
        maintenanceWindows:
          - {start: 22:00, end: 04:00, timezone: Europe/Amsterdan}
          - start: 22:00
            end: 22:00
        """
    ) == [
        "maintenanceWindows[0].timezone (line 2): 'Europe/Amsterdan' is not an IANA time zone (e.g. 'Europe/Amsterdam', 'UTC')",
        "maintenanceWindows[1].end (line 4): start and end are both 22:00; use 00:00 to 24:00 for a whole day",
    ]


def test_scopes_need_a_match_and_a_unique_name_that_is_not_default() -> None:
    assert problems(
        """\
        scopes:
          - name: prod
            match: {}
          - name: default
            match: {tags: {env: prod}}
          - match: {tags: {env: x}}
        """
    ) == [
        "scopes[0].match (line 3): a match needs at least one of subscriptions, resourceGroups, tags",
        "scopes[1].name (line 4): 'default' is reserved for the top-level settings",
        "scopes[2] (line 6): missing 'name'",
    ]
    assert problems(
        """\
        scopes:
          - {name: prod, match: {tags: {env: prod}}}
          - {name: prod, match: {tags: {env: production}}}
        """
    ) == ["scopes[1].name (line 3): scope name 'prod' is already used by scopes[0]"]


def test_ticket_routes_are_checked_per_provider() -> None:
    assert problems(
        """\
        tickets:
          provider: jira
          route: {}
        scopes:
          - name: a
            match: {tags: {team: a}}
            tickets:
              provider: github
              route: {repo: not a repo, project: x}
          - name: b
            match: {tags: {team: b}}
            tickets:
              provider: azure-devops
              route: {organization: contoso}
          - name: c
            match: {tags: {team: c}}
            tickets:
              provider: webhook
              route: {url: "http://hooks.example/x", format: email}
        """
    ) == [
        "tickets.provider (line 2): 'jira' is not one of 'github', 'azure-devops', 'webhook'",
        "scopes[0].tickets.route.project (line 9): unknown key 'project'; valid keys: repo, assignees",
        "scopes[0].tickets.route.repo (line 9): 'not a repo' is not a GitHub repository 'owner/name'",
        "scopes[1].tickets.route (line 14): missing 'project'",
        "scopes[2].tickets.route.format (line 19): 'email' is not one of 'teams', 'slack'",
        "scopes[2].tickets.route.url (line 19): 'http://hooks.example/x' is not an https:// URL",
    ]
    assert problems(
        """\
        tickets:
          provider: webhook
          route: {format: teams}
        """
    ) == ["tickets.route (line 3): a webhook route needs exactly one of 'url', 'urlSetting'"]


def test_duplicate_keys_are_errors_not_silently_the_last() -> None:
    assert problems(
        """\
        actions:
          attach-acr: auto
          attach-acr: ticket
        """
    ) == ["actions.attach-acr (line 3): duplicate key (first at line 2)"]


def test_bad_yaml_syntax_names_the_line() -> None:
    assert problems("mode: dry-run\nactions:\n  attach-acr: [auto\n") == [
        "(document) (line 4): invalid YAML, column 1: while parsing a flow sequence "
        "expected ',' or ']', but got '<stream end>'"
    ]
    assert problems("- just\n- a list\n") == ["(document) (line 1): expected a mapping, got a list"]


def test_every_problem_is_reported_at_once_and_nothing_is_built() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("mode: sometimes\nactions: {attach-acr: maybe}\nbogus: 1\n", source="p.yaml")
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert str(error) == "\n".join(
        [
            "policy p.yaml is invalid (3 problems):",
            "  mode (line 1): 'sometimes' is not one of 'dry-run', 'enforce'",
            "  actions.attach-acr (line 2): 'maybe' is not one of 'auto', 'ticket', 'off'",
            "  bogus (line 3): unknown key 'bogus'; valid keys: mode, actions, rateLimit, cooldown, "
            "maintenanceWindows, expiryWindows, tickets, scopes, pairs",
        ]
    )


def test_known_pairs_and_their_retention() -> None:
    cluster = (
        "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg"
        "/providers/Microsoft.ContainerService/managedClusters/aks"
    )
    registry = (
        "/subscriptions/9a3c/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r"
    )
    policy = parse_policy(
        f"pairs:\n  retentionDays: 30\n  known:\n    - {{cluster: {cluster}, registry: {registry}}}\n"
    )
    assert [(k.cluster_id, k.registry_id) for k in policy.known_pairs] == [(cluster, registry)]
    assert policy.pair_retention.days == 30
    assert parse_policy("").pair_retention.days == 90
    assert problems("pairs:\n  known:\n    - {cluster: aks, registry: acr}\n") == [
        "pairs.known[0].cluster (line 3): 'aks' is not a resource id (/subscriptions/...)",
        "pairs.known[0].registry (line 3): 'acr' is not a resource id (/subscriptions/...)",
    ]


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file: No such file or directory"):
        load_policy(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00mode")
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(binary)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("mode: dry-run\n")
    assert load_policy(path).default.mode == "dry-run"
    path.write_text("mode: enforce\n# longer now\n")
    assert load_policy(path).default.mode == "enforce"


def test_expiry_windows_pick_the_tightest_warning() -> None:
    scope = parse_policy("expiryWindows: [7, 30, 1, 14]\n").default
    assert scope.expiry_windows == (30, 14, 7, 1)
    assert [scope.expiry_window(d) for d in (45, 30, 10, 7, 0.5, -2)] == [None, 30, 14, 7, 1, 1]
