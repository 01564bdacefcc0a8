# kubecache images, built from this repository (docker build -t kubecache .):
#   default target "cacher": runs kubecache-cacher (the chart's cacher image);
#   target "hub" (docker build --target hub -t kubecache-hub .): JupyterHub with
#   kubecache installed, a base for a hub image (see charts/README.md).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubecache ./kubecache
COPY cacher ./cacher
COPY spawner ./spawner
COPY kubesim ./kubesim
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed non-root user; the chart runs the pods as this uid.
RUN groupadd --system --gid 10001 kubecache \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/kubecache \
      --shell /usr/sbin/nologin kubecache
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

FROM runtime AS hub
# zero-to-jupyterhub's hub configuration uses tornado's curl HTTP client, and
# extraConfig snippets commonly import kubespawner's helpers.
RUN pip install --no-cache-dir pycurl==7.49.0 jupyterhub-kubespawner==7.1.0 \
 && mkdir -p /srv/jupyterhub /usr/local/etc/jupyterhub \
 && chown 10001:10001 /srv/jupyterhub
WORKDIR /srv/jupyterhub
USER 10001:10001
EXPOSE 8081
CMD ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]

FROM runtime AS cacher
WORKDIR /home/kubecache
USER 10001:10001
# /healthz, /readyz and /metrics
EXPOSE 8080
ENTRYPOINT ["kubecache-cacher"]
