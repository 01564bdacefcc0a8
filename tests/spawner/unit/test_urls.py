"""The server URL is KubeSpawner's: pod IP, service DNS name, https with internal_ssl."""

from __future__ import annotations

from typing import Any

from kubecache.spawner.urls import normalized, notebook_port, pod_url


def url(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "pod_ip": "10.0.0.7",
        "port": 8888,
        "dns_name": "jupyter-alice.jhub.svc.cluster.local",
        "internal_ssl": False,
        "services_enabled": False,
        "pod_connect_ip": "",
        "expand": lambda template: template.replace("{username}", "alice"),
    }
    args.update(overrides)
    return pod_url(**args)


def test_the_pod_ip_is_used_by_default() -> None:
    assert url() == "http://10.0.0.7:8888"


def test_an_ipv6_pod_ip_is_bracketed() -> None:
    assert url(pod_ip="fd00::7") == "http://[fd00::7]:8888"


def test_services_use_the_dns_name_and_internal_ssl_uses_https() -> None:
    assert url(services_enabled=True) == "http://jupyter-alice.jhub.svc.cluster.local:8888"
    assert url(internal_ssl=True) == "https://jupyter-alice.jhub.svc.cluster.local:8888"


def test_pod_connect_ip_replaces_the_host_with_its_templates_expanded() -> None:
    assert url(pod_connect_ip="jupyter-{username}.hub") == "http://jupyter-alice.hub:8888"


def test_the_notebook_port_comes_from_the_manifest() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "ports": [
                        {"name": "metrics", "containerPort": 9090},
                        {"name": "notebook-port", "containerPort": 8000},
                    ],
                }
            ]
        }
    }
    assert notebook_port(pod) == 8000
    assert notebook_port({"spec": {"containers": [{"name": "notebook"}]}}) is None


def test_normalized_urls_always_carry_a_port() -> None:
    assert normalized("http://10.0.0.7/user/alice/").netloc == "10.0.0.7:80"
    assert normalized("https://hub.example/").netloc == "hub.example:443"


def test_the_fast_netloc_agrees_with_parsing_the_url() -> None:
    from kubecache.spawner.urls import netloc

    for text in (
        "http://10.0.0.1:8888/user/x/",
        "http://10.0.0.1/user/x/",
        "https://h.example:443",
        "http://[::1]:8888/a",
        "http://[::1]/a",
        "http://u@h:1/",
        "http://H.EXAMPLE:80/",
        "http://h:80?x",
        "http://h:80#f",
        "http+unix://%2Fsock/x",
        "http://h:/x",
        " http://h:1/",
        "http://h:1\n/",
        "http://jupyter-a.jhub.svc.cluster.local:8888",
    ):
        assert netloc(text) == normalized(text).netloc, text
