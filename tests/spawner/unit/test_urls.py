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


def test_plainly_same_only_says_so_when_both_urls_have_the_same_netloc() -> None:
    """The fresh hub's shortcut never hides a changed address: whenever it says "same",
    JupyterHub's URL of the server and the pod's URL have one netloc (hypothesis over
    addresses, ports and JupyterHub's connect options); it decides the plain case."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from jupyterhub.objects import Server

    from kubecache.spawner.urls import netloc, plainly_same

    ips = st.sampled_from(["10.0.0.7", "10.0.0.8", "0.0.0.0", "", "fd00::7", "::", "a.b"])
    ports = st.sampled_from([0, 8888, 8889])

    @settings(max_examples=400, deadline=None)
    @given(
        pod_ip=ips,
        port=ports,
        server_ip=ips,
        server_port=ports,
        connect_ip=st.sampled_from(["", "10.0.0.7", "other"]),
        connect_port=ports,
        connect_url=st.sampled_from(["", "http://10.0.0.7:8888/user/a/", "http://x:1/"]),
    )
    def check(
        *,
        pod_ip: str,
        port: int,
        server_ip: str,
        server_port: int,
        connect_ip: str,
        connect_port: int,
        connect_url: str,
    ) -> None:
        server = Server(base_url="/user/a/", ip=server_ip, port=server_port)
        server.connect_ip, server.connect_port = connect_ip, connect_port
        if connect_url:
            server.connect_url = connect_url
        if plainly_same(pod_ip, port, server):
            assert netloc(server.url) == netloc(url(pod_ip=pod_ip, port=port))

    check()
    plain = Server(base_url="/user/a/", ip="10.0.0.7", port=8888)
    assert plainly_same("10.0.0.7", 8888, plain)
    assert not plainly_same("10.0.0.8", 8888, plain)
    assert not plainly_same("10.0.0.7", 8889, plain)
    assert not plainly_same(None, 8888, plain)
