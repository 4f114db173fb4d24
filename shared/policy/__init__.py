"""The operator's policy (DESIGN.md section 6): scopes, modes, per-action settings and limits.

Pure: no I/O except reading the policy file. ``load_policy(path)`` validates (raising
:class:`PolicyError` with every problem's path and line); ``decide(...)`` explains each decision.
"""

from shared.policy.decide import Counters, Decision, DecisionKind, decide
from shared.policy.errors import PolicyError, Problem
from shared.policy.loader import BUNDLED_DEFAULT, load_policy, parse_policy
from shared.policy.model import KnownPair, Match, Policy, Scope, TicketRoute
from shared.policy.schema import ACTION_IDS, DEFAULT_ACTIONS, SCHEMA
from shared.policy.windows import MaintenanceWindow

__all__ = [
    "ACTION_IDS",
    "BUNDLED_DEFAULT",
    "DEFAULT_ACTIONS",
    "SCHEMA",
    "Counters",
    "Decision",
    "DecisionKind",
    "KnownPair",
    "MaintenanceWindow",
    "Match",
    "Policy",
    "PolicyError",
    "Problem",
    "Scope",
    "TicketRoute",
    "decide",
    "load_policy",
    "parse_policy",
]
