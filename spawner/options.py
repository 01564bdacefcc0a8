"""kubecache's own spawner options: the cache, the poll policies and OutpostSpawner's hooks.

A mixin of traits only, combined with the KubeSpawner surface in
:class:`kubecache.spawner.spawner.KubeCacheSpawner` (``c.KubeCacheSpawner.*``). The
Redis options default to the ``KUBECACHE_*`` environment variables the
cacher and the ``kubecache`` CLI read, so one Secret can configure all.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Callable
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import (
    Bool,
    Float,
    HasTraits,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    validate,
)

from kubecache.contract import DEFAULT_PREFIX, prefix_problem
from kubecache.redis_connection import DEFAULT_URL, RedisConfigError, RedisSettings
from kubecache.spawner.pod_state import DEFAULT_START_FAILURE_REASONS

DEFAULT_CANCELLING_EVENT: dict[str, Any] = {
    "failed": False,
    "ready": False,
    "progress": 99,
    "message": "",
    "html_message": "JupyterLab is cancelling the start.",
}


def _env(name: str) -> str | None:
    return os.environ.get(f"KUBECACHE_{name}") or None


def _checked_url(url: str) -> str:
    try:
        RedisSettings(url=url).validate()
    except RedisConfigError as e:
        raise TraitError(f"KubeCacheSpawner.redis_url (or $KUBECACHE_REDIS_URL): {e}") from e
    return url


def _checked_prefix(prefix: str) -> str:
    problem = prefix_problem(prefix)
    if problem:
        raise TraitError(
            f"KubeCacheSpawner.redis_key_prefix (or $KUBECACHE_KEY_PREFIX): {problem}; "
            "it must equal the cacher's --key-prefix"
        )
    return prefix


def _checked_stale_after(seconds: float) -> float:
    if not seconds > 0:  # also refuses NaN
        raise TraitError(
            "KubeCacheSpawner.cache_stale_after (or $KUBECACHE_STALE_AFTER) must be a positive "
            f"number of seconds, not {seconds!r} (default 15; the cacher beats every 2 s)"
        )
    return seconds


class CacheSpawnerOptions(HasTraits):
    """Traits of KubeCacheSpawner beyond KubeSpawner's."""

    # ---- the cache

    redis_url = Unicode(
        help="""URL of the Redis the kubecache cacher writes to.

        ``redis://host:6379/0``, ``rediss://`` (TLS), ``unix:///path?db=0`` or
        ``redis+sentinel://host1:26379,host2:26379/service/db``.
        Default: $KUBECACHE_REDIS_URL, else redis://127.0.0.1:6379/0.
        """,
    ).tag(config=True)

    redis_username = Unicode(
        None,
        allow_none=True,
        help="Redis ACL user name (default: $KUBECACHE_REDIS_USERNAME, else the URL's).",
    ).tag(config=True)

    redis_password = Unicode(
        None,
        allow_none=True,
        help="""Redis password (default: $KUBECACHE_REDIS_PASSWORD, else the URL's).

        Prefer redis_password_file (a mounted Secret) to keep it out of config files.
        """,
    ).tag(config=True)

    redis_password_file = Unicode(
        None,
        allow_none=True,
        help="File holding the Redis password; wins over redis_password "
        "(default: $KUBECACHE_REDIS_PASSWORD_FILE).",
    ).tag(config=True)

    redis_ca_file = Unicode(
        None,
        allow_none=True,
        help="CA bundle for rediss:// with a private CA (default: $KUBECACHE_REDIS_CA_FILE).",
    ).tag(config=True)

    redis_key_prefix = Unicode(
        help="""Key prefix of the kubecache deployment in Redis; must equal the cacher's
        --key-prefix. Default: $KUBECACHE_KEY_PREFIX, else kubecache:v1:.
        """,
    ).tag(config=True)

    cache_stale_after = Float(
        help="""Seconds without a cacher heartbeat after which the cache is not trusted.

        An untrusted cache (stale, not yet synced after a resync, no cacher ever
        wrote, another schema) never declares a server dead: poll() then reads the
        pod from the Kubernetes API once, and start()/stop() wait by reading the API.
        Default: $KUBECACHE_STALE_AFTER, else 15 (the cacher beats every 2 s).
        """,
    ).tag(config=True)

    start_failure_reasons = List(
        Unicode(),
        default_value=list(DEFAULT_START_FAILURE_REASONS),
        help="""Container waiting reasons that fail a start at once.

        Without them a start waits for start_timeout like KubeSpawner does. The
        kubelet has retried when a container reaches one of these reasons.
        Set to [] to always wait for start_timeout.
        """,
    ).tag(config=True)

    # ---- what users may send

    user_options_max_bytes = Integer(
        64 * 1024,
        min=1,
        help="""Largest user_options body accepted (bytes of its JSON form).

        A larger spawn request is refused with 400 before anything is created; the
        options of every profile of profile_list are checked the same way.
        """,
    ).tag(config=True)

    # ---- OutpostSpawner's poll failure policies

    request_failed_poll_keep_running = Bool(
        True,
        help="""How poll() answers when the server's state cannot be known.

        When Redis is unreachable or the cache is untrusted, and the one direct
        Kubernetes API read fails as well: True reports the server running
        (the next poll asks again), False reports it stopped (exit status 1).
        As OutpostSpawner's option of the same name for a failed poll request.
        """,
    ).tag(config=True)

    request_404_poll_keep_running = Bool(
        False,
        help="""How poll() answers when the pod is known to be absent.

        Absent means: no record in a fresh cache, or 404 from the API. False
        reports the server stopped (exit status 1, as KubeSpawner does); True
        reports it running. As OutpostSpawner's option of the same name.
        """,
    ).tag(config=True)

    # ---- OutpostSpawner's hooks

    check_allowed = AnyTrait(
        None,
        allow_none=True,
        help="""Hook called as check_allowed(spawner, user_options) before anything is made.

        Raise an exception to refuse the start; its message is shown to the user.
        May be a coroutine.
        """,
    ).tag(config=True)

    filter_events = AnyTrait(
        None,
        allow_none=True,
        help="""Hook called as filter_events(spawner, event) on every progress event.

        Returns the event to show (it may change it, e.g. add html_message), or an
        empty dict to hide it. May be a coroutine.
        """,
    ).tag(config=True)

    cancelling_event = Union(
        [AnyTrait()],
        default_value=DEFAULT_CANCELLING_EVENT,
        help="""Progress event shown when a pending start is being cancelled.

        A dict, or a callable cancelling_event(spawner) returning one (may be a coroutine).
        """,
    ).tag(config=True)

    pre_poll_hook = AnyTrait(
        None,
        allow_none=True,
        help="""Hook called as pre_poll_hook(spawner) before every poll().

        Return True: unknown, poll as usual. False: unknown, do not poll, the
        server continues as running. An int: that is the exit status, do not
        poll. None: the server is running, do not poll. May be a coroutine.
        (OutpostSpawner's contract.)
        """,
    ).tag(config=True)

    pre_stop_hook = AnyTrait(
        None,
        allow_none=True,
        help="Hook called as pre_stop_hook(spawner) before stop() deletes the pod. "
        "May be a coroutine; its errors are logged and the stop goes on.",
    ).tag(config=True)

    show_first_default_event = AnyTrait(
        True,
        help="""Whether progress starts with JupyterHub's default event at 0% ("Server requested").

        A bool, or a callable show_first_default_event(spawner) returning one (may be a
        coroutine). False leaves the spawn page to the pod's own events.
        """,
    ).tag(config=True)

    post_spawn_request_hook = AnyTrait(
        None,
        allow_none=True,
        help="""Hook called as post_spawn_request_hook(spawner, pod) once the pod create
        request succeeded; ``pod`` is the pod as the API returned it (a dict, with its uid).

        May be a coroutine. An exception fails the start (the pod is deleted).
        """,
    ).tag(config=True)

    failed_spawn_request_hook = AnyTrait(
        None,
        allow_none=True,
        help="""Hook called as failed_spawn_request_hook(spawner, exception) when the pod create
        request failed (API error, or retries exhausted); the start fails with that exception
        afterwards. May be a coroutine; its own errors are logged.
        """,
    ).tag(config=True)

    custom_poll_interval = Union(
        [AnyTrait()],
        default_value=0,
        help="""This server's poll interval in milliseconds, instead of poll_interval.

        An int, or a callable custom_poll_interval(spawner, user_options) returning one
        (may be a coroutine); 0 means poll_interval. Use it to spread the polls of many
        servers, or to poll some less often.
        """,
    ).tag(config=True)

    # The defaults of the Redis options read the environment only (the module-level
    # functions below, which redis_settings() calls directly when these generators are
    # the ones in effect: see _env_default).

    @default("redis_url")
    def _redis_url_default(self) -> str:
        return _default_redis_url()

    @default("redis_username")
    def _redis_username_default(self) -> str | None:
        return _default_redis_username()

    @default("redis_password")
    def _redis_password_default(self) -> str | None:
        return _default_redis_password()

    @default("redis_password_file")
    def _redis_password_file_default(self) -> str | None:
        return _default_redis_password_file()

    @default("redis_ca_file")
    def _redis_ca_file_default(self) -> str | None:
        return _default_redis_ca_file()

    @default("redis_key_prefix")
    def _redis_key_prefix_default(self) -> str:
        return _default_redis_key_prefix()

    @default("cache_stale_after")
    def _cache_stale_after_default(self) -> float:
        text = _env("STALE_AFTER") or "15"
        try:
            seconds = float(text)
        except ValueError:
            raise TraitError(
                f"KUBECACHE_STALE_AFTER={text!r} is not a number of seconds: set it to e.g. 15, "
                "or set c.KubeCacheSpawner.cache_stale_after"
            ) from None
        return _checked_stale_after(seconds)

    # Misconfiguration is an error when the spawner is configured, not a silent fall back to
    # the Kubernetes API on every poll. traitlets validates configured values with these; the
    # defaults from the environment are checked by the same functions.

    @validate("redis_url")
    def _validate_redis_url(self, proposal: dict[str, Any]) -> str:
        return _checked_url(proposal["value"])

    @validate("redis_key_prefix")
    def _validate_redis_key_prefix(self, proposal: dict[str, Any]) -> str:
        return _checked_prefix(proposal["value"])

    @validate("cache_stale_after")
    def _validate_cache_stale_after(self, proposal: dict[str, Any]) -> float:
        return _checked_stale_after(float(proposal["value"]))

    def check_cache_options(self) -> None:
        """Raise TraitError now for cache options that cannot work (defaults included)."""
        _checked_url(self.redis_url)
        _checked_prefix(self.redis_key_prefix)
        _checked_stale_after(self.cache_stale_after)

    def redis_settings(self) -> RedisSettings:
        """The Redis connection settings these options describe (validated).

        Built and validated once per configuration for the whole hub, not per
        spawner object: a hub makes one spawner object per server and asks
        each for its settings on its first poll.
        """
        return self.redis_target()[0]

    def redis_target(self) -> tuple[RedisSettings, str]:
        """(:meth:`redis_settings`, ``redis_key_prefix``): what the shared cache client is
        looked up by. One tuple per configuration, shared by its spawners.

        The options left to the environment are read from it once per configuration
        (the ``Config`` object every spawner of a hub shares) and spawner class, not
        once per spawner object: four environment reads and the prefix's validation
        were most of a fresh hub's first poll of a server outside JupyterHub's own
        task (11-17 us of it, 3,000 spawner objects). A hub process's environment is
        set when it starts; a new ``Config`` reads it again.
        """
        known = _environment_of(getattr(self, "config", None), type(self))  # a Configurable
        return _redis_target(tuple([self._option_value(name, known) for name in REDIS_OPTIONS]))

    def _option_value(self, name: str, known: dict[str, Any] | None = None) -> Any:
        """The option's value, without storing its default on this object.

        An option nobody set (most of them: they default to the environment) would
        otherwise be materialised on every spawner object, with its change
        notification: a sixth of a fresh hub's first poll of each server (cProfile,
        10,000 servers, benchmarks/poll_profile.py). When the default in effect is
        this class's own (see :func:`_env_default`), it is computed by the same
        function without traitlets' default machinery (27 -> 12 us per spawner for
        the six options), or taken from ``known``, the values this configuration
        already read (see :meth:`redis_target`; a value that fails is not kept).
        """
        if self.trait_has_value(name):
            return getattr(self, name)
        compute = _env_default(type(self), name)
        if compute is None or f"_{name}_default" in self.__dict__:
            return self.trait_defaults(name)
        if known is None:
            return compute()
        if name not in known:
            known[name] = compute()
        return known[name]


def _default_redis_url() -> str:
    return _checked_url(_env("REDIS_URL") or DEFAULT_URL)


def _default_redis_username() -> str | None:
    return _env("REDIS_USERNAME")


def _default_redis_password() -> str | None:
    return _env("REDIS_PASSWORD")


def _default_redis_password_file() -> str | None:
    return _env("REDIS_PASSWORD_FILE")


def _default_redis_ca_file() -> str | None:
    return _env("REDIS_CA_FILE")


def _default_redis_key_prefix() -> str:
    return _checked_prefix(_env("KEY_PREFIX") or DEFAULT_PREFIX)


#: The environment-only default of each Redis option, as its generator above computes it.
_ENV_DEFAULTS: dict[str, Callable[[], Any]] = {
    "redis_url": _default_redis_url,
    "redis_username": _default_redis_username,
    "redis_password": _default_redis_password,
    "redis_password_file": _default_redis_password_file,
    "redis_ca_file": _default_redis_ca_file,
    "redis_key_prefix": _default_redis_key_prefix,
}


@functools.cache
def _env_default(cls: type, name: str) -> Callable[[], Any] | None:
    """The function computing option ``name``'s default on instances of ``cls``, when the
    generator traitlets would call is CacheSpawnerOptions's own (which calls it and reads
    nothing of the instance); None when a subclass overrides it (a ``@default`` or a
    ``_<name>_default`` method of its own) or this traitlets resolves generators in a way
    not checked here: then the trait's own default is read.

    Mirrors ``HasTraits._get_trait_default_generator`` (traitlets 5): the class's own
    ``_<name>_default`` first, then ``_all_trait_default_generators`` over the MRO.
    """
    compute = _ENV_DEFAULTS.get(name)
    own = getattr(CacheSpawnerOptions, "_all_trait_default_generators", {}).get(name)
    generators = getattr(cls, "_all_trait_default_generators", None)
    if compute is None or own is None or not isinstance(generators, dict):
        return None
    method = f"_{name}_default"
    if method in vars(cls) and vars(cls)[method] is not vars(CacheSpawnerOptions).get(method):
        return None
    return compute if generators.get(name) is own else None


#: The option defaults read from the environment, per configuration and spawner class:
#: ``(id(config), class) -> (a weak reference to the config, {option: value})``; an
#: entry goes when its ``Config`` object does (ids are reused only after that).
_READ_FROM_ENVIRONMENT: dict[
    tuple[int, type], tuple[weakref.ReferenceType[Any], dict[str, Any]]
] = {}


def _environment_of(config: object, cls: type) -> dict[str, Any] | None:
    """The defaults ``cls`` spawners of ``config`` have read from the environment so far
    (filled by :meth:`CacheSpawnerOptions._option_value`); None when the configuration
    cannot be remembered (not weakly referenceable): then every spawner reads."""
    key = (id(config), cls)
    held = _READ_FROM_ENVIRONMENT.get(key)
    if held is not None and held[0]() is config:
        return held[1]
    try:
        ref = weakref.ref(config, lambda _: _READ_FROM_ENVIRONMENT.pop(key, None))
    except TypeError:
        return None
    values: dict[str, Any] = {}
    _READ_FROM_ENVIRONMENT[key] = (ref, values)
    return values


#: The options redis_settings() is made of, in the order _redis_settings unpacks them.
REDIS_OPTIONS = (
    "redis_url",
    "redis_username",
    "redis_password",
    "redis_password_file",
    "redis_ca_file",
    "redis_key_prefix",
)


@functools.lru_cache(maxsize=32)
def _redis_target(options: tuple[Any, ...]) -> tuple[RedisSettings, str]:
    """(settings, key prefix) of one configuration (not cached when the settings fail)."""
    return _redis_settings(options), options[-1]


@functools.lru_cache(maxsize=32)
def _redis_settings(options: tuple[Any, ...]) -> RedisSettings:
    """The validated settings of one configuration, the values of :data:`REDIS_OPTIONS`
    (settings that fail are not cached: every call raises)."""
    url, username, password, password_file, ca_file, prefix = options
    settings = RedisSettings(
        url=url,
        username=username,
        password=password,
        password_file=password_file,
        ca_file=ca_file,
        client_name="kubecache-hub",
    )
    settings.validate()
    problem = prefix_problem(prefix)
    if problem:
        raise ValueError(f"KubeCacheSpawner.redis_key_prefix: {problem}")
    return settings


__all__ = ["DEFAULT_CANCELLING_EVENT", "CacheSpawnerOptions"]
