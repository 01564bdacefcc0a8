"""Bearer-token authentication and an optional per-token rule set (a tiny RBAC).

Without rules a valid token may do everything. With rules, a request is allowed when any
rule of its token matches its verb, resource and namespace ("*" matches anything; a rule
without namespaces matches every namespace and the cluster scope). Pure: no I/O.

A request without credentials is, as on kube-apiserver with ``--anonymous-auth=true`` (its
default, and kubeadm's), the user ``system:anonymous``, which no RBAC binding of a default
cluster lets read resources or discovery: 403. With ``anonymous=False`` it is 401. A bearer
token the server does not know is 401 either way (the anonymous authenticator only runs when
the token authenticator found no credentials, ``union.NewFailOnError`` in
pkg/kubeapiserver/authenticator/config.go).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubesim import errors

__all__ = ["ANONYMOUS", "ANONYMOUS_USER", "Authenticator", "Rule"]

#: The "token" of a request without credentials (when anonymous requests are enabled).
ANONYMOUS = ""
ANONYMOUS_USER = "system:anonymous"


@dataclass(frozen=True)
class Rule:
    """Allows ``verbs`` on ``resources`` in ``namespaces`` (empty namespaces = everywhere)."""

    verbs: frozenset[str] = frozenset({"*"})
    resources: frozenset[str] = frozenset({"*"})
    namespaces: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, verbs: Iterable[str], resources: Iterable[str], namespaces: Iterable[str] = ()
    ) -> Rule:
        return cls(frozenset(verbs), frozenset(resources), frozenset(namespaces))

    def allows(self, verb: str, resource: str, namespace: str | None) -> bool:
        return (
            ("*" in self.verbs or verb in self.verbs)
            and ("*" in self.resources or resource in self.resources)
            and (not self.namespaces or "*" in self.namespaces or namespace in self.namespaces)
        )


@dataclass
class Authenticator:
    """Maps bearer tokens to users and, optionally, to the rules that limit them."""

    users: dict[str, str] = field(default_factory=dict)  # token -> user name
    rules: dict[str, list[Rule]] = field(default_factory=dict)  # token -> rules (absent = all)
    anonymous: bool = True  # requests without credentials are system:anonymous (else 401)

    @classmethod
    def single(
        cls, token: str, user: str = "kubesim-admin", *, anonymous: bool = True
    ) -> Authenticator:
        return cls(users={token: user}, anonymous=anonymous)

    def add_token(self, token: str, user: str, rules: Iterable[Rule] | None = None) -> None:
        self.users[token] = user
        if rules is not None:
            self.rules[token] = list(rules)

    def issue_service_account_token(self, namespace: str, account: str) -> str:
        """A new bearer token for ``system:serviceaccount:<namespace>:<account>``.

        kubesim serves no RBAC objects, so the token may do what an unrestricted token may;
        it does not expire (a real projected token is a JWT the kubelet rotates).
        """
        token = f"kubesim-sa-{secrets.token_urlsafe(24)}"
        self.add_token(token, f"system:serviceaccount:{namespace}:{account}")
        return token

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The token of an ``Authorization: Bearer`` header, or :data:`ANONYMOUS`.

        401 for a bearer token kubesim does not know; without a bearer token, ANONYMOUS when
        anonymous requests are enabled, else 401.
        """
        header = headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            if token not in self.users:
                raise errors.unauthorized()
            return token
        if not self.anonymous:
            raise errors.unauthorized()
        return ANONYMOUS

    def user(self, token: str) -> str:
        return ANONYMOUS_USER if token == ANONYMOUS else self.users.get(token, "")

    def authorize(
        self, token: str, verb: str, resource: str, namespace: str | None, *, group: str = ""
    ) -> None:
        """403 Forbidden (the RBAC wording) when the token's rules deny the request."""
        if token == ANONYMOUS:
            raise errors.forbidden(ANONYMOUS_USER, verb, resource, namespace, group=group)
        rules = self.rules.get(token)
        if rules is None or any(rule.allows(verb, resource, namespace) for rule in rules):
            return
        raise errors.forbidden(self.users[token], verb, resource, namespace, group=group)
