"""A cacher whose token file was still empty recovers at once on a cluster with anonymous
auth on, where a request without credentials is 403 (system:anonymous), not 401."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubecache.cacher.credentials import ClusterAccess
from kubecache.cacher.kube_api import ApiStatusError, KubeHttp
from kubesim.testing import running_kubesim


@pytest.mark.parametrize("anonymous_auth", [True, False])
async def test_a_refusal_without_credentials_rereads_the_token_file(
    tmp_path: Path, anonymous_auth: bool
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("")  # the projected token not written yet
    async with running_kubesim(kubelet=None, anonymous_auth=anonymous_auth) as sim:
        http = KubeHttp(ClusterAccess(server=sim.url, token_file=str(token_file)))
        try:
            with pytest.raises(ApiStatusError) as refused:
                await http.request("GET", "/api/v1/namespaces/default/pods")
            assert refused.value.status == (403 if anonymous_auth else 401)
            token_file.write_text(sim.token)
            # Not after the 60 s token-file refresh: the next request reads the file again.
            listed = await http.request("GET", "/api/v1/namespaces/default/pods")
            assert listed["kind"] == "PodList"
        finally:
            await http.close()
