# kubecache images, built from this repository (docker build -t kubecache .):
#   default target "cacher": runs kubecache-cacher (the chart's cacher image): the cacher's
#   own dependencies only, no JupyterHub, no Kubernetes client, no emulator;
#   target "hub" (docker build --target hub -t kubecache-hub .): zero-to-jupyterhub's hub
#   image with kubecache added, for hub.image (see docs/z2jh.md).
# Dependencies come from the hashed locks in requirements/ (scripts/lock.py): the cacher's
# from requirements/cacher.txt, the three the hub image adds from requirements/hub-image.txt.
# The hub's base is the k8s-hub image of the
# zero-to-jupyterhub release you run (--build-arg Z2JH_HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.x.y).
ARG Z2JH_HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.4.2

# Each image's wheel holds only its packages (the emulator, kubesim, is a distribution of its
# own, never installed here); the console script of the package an image lacks is removed.
FROM python:3.11-slim AS build-cacher
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubecache ./kubecache
COPY cacher ./cacher
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim AS build-hub
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubecache ./kubecache
COPY spawner ./spawner
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# zero-to-jupyterhub 4.x's hub image: its JupyterHub (never upgraded here: a newer one would
# migrate the hub database), kubespawner, authenticators, jupyterhub-idle-culler and pycurl,
# which its hub configuration uses. kubecache is added with --no-deps and only the three
# packages the image lacks, from the lock with their hashes, so nothing the image ships changes.
FROM ${Z2JH_HUB_IMAGE} AS hub
USER 0
COPY requirements/hub-image.txt /tmp/requirements.txt
COPY --from=build-hub /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps /tmp/wheels/kubecache-*.whl \
 && rm -f "$(command -v kubecache-cacher)" \
 && python3 -c "import jupyterhub, kubespawner, kubecache.spawner.spawner" \
 && rm -rf /tmp/wheels /tmp/requirements.txt
# the base image's user (jovyan) and command (jupyterhub --config
# /usr/local/etc/jupyterhub/jupyterhub_config.py, where the chart mounts its configuration)
USER 1000

FROM python:3.11-slim AS cacher
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed non-root user; the chart runs the pods as this uid.
RUN groupadd --system --gid 10001 kubecache \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/kubecache \
      --shell /usr/sbin/nologin kubecache
COPY requirements/cacher.txt /tmp/requirements.txt
COPY --from=build-cacher /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && python3 -c "import kubecache.cacher.__main__" \
 && rm -rf /tmp/wheels /tmp/requirements.txt
WORKDIR /home/kubecache
USER 10001:10001
# /healthz, /readyz and /metrics
EXPOSE 8080
ENTRYPOINT ["kubecache-cacher"]
