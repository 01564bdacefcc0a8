"""Redis settings: URL forms, credentials precedence, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubecache.redis_connection import RedisConfigError, RedisSettings, connect, redacted


def test_password_files_win_over_the_url(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    settings = RedisSettings(url="redis://u:inline@h:6379/0", password_file=str(secret))
    assert settings.credentials() == ("u", "from-file")


def test_passwords_never_reach_logs() -> None:
    assert redacted("redis://u:s3cret@h:6379/0") == "redis://u:***@h:6379/0"
    assert "s3cret" not in repr(RedisSettings(password="s3cret"))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (RedisSettings(url="http://h"), "scheme"),
        (RedisSettings(url="redis+sentinel:///svc"), "Sentinel URL"),
        (RedisSettings(url="redis+sentinel://h:x/svc"), "Sentinel address"),
        (RedisSettings(password_file="/nonexistent/pw"), "password_file"),
        (RedisSettings(socket_timeout=0), "timeouts"),
    ],
)
def test_unworkable_settings_fail_before_connecting(settings: RedisSettings, problem: str) -> None:
    with pytest.raises(RedisConfigError, match=problem):
        settings.validate()


async def test_connects_with_credentials_from_a_file(redis_server, tmp_path: Path) -> None:
    client = connect(RedisSettings(url=redis_server.url))
    assert await client.ping()
    await client.aclose()


def test_sentinel_urls_build_a_master_client() -> None:
    client = connect(RedisSettings(url="redis+sentinel://s1:26379,s2:26380/mymaster/2"))
    assert client.connection_pool.service_name == "mymaster"  # type: ignore[attr-defined]
