"""The fake kubelet: pods move through the real kubelet's steps; containers are scripted, not run.

Every step takes the configured KubeletTimings delay. Without annotations a
container starts, becomes ready at once (after one ``start`` step when it has
a readinessProbe) and runs until the pod is deleted; stopping takes ``stop``
seconds and ends with exit code 0. Init containers run ``init_run`` seconds
and exit 0.

Scripted behaviours, by pod annotation (they apply to the first container,
``spec.containers[0]``, the notebook; values are strings):

``kubesim.dev/exit-code: "3"``
    the container exits with this code (immediately unless exit-after is set)
``kubesim.dev/exit-after: "2.5"``
    the container exits after this many seconds (code from exit-code, else 0);
    with restartPolicy Always it is restarted and exits again: a crash loop
``kubesim.dev/oom-after: "1"``
    the container is OOMKilled (exit code 137) after this many seconds
``kubesim.dev/ready-after: "2"``
    the container becomes ready this many seconds after it started
``kubesim.dev/never-ready: "true"``
    the container runs but never becomes ready
``kubesim.dev/pull-fails: "true"``
    pulling its image fails (ErrImagePull, then ImagePullBackOff, retried with
    back-off); images matching the kubelet's ``pull_failure_patterns``
    (default ``*:doesnotexist``, ``*/nonexistent*``) fail for any container
``kubesim.dev/ignore-sigterm: "true"``
    on deletion the container ignores SIGTERM, so stopping takes the whole
    grace period and ends in SIGKILL (exit code 137)
``kubesim.dev/init-exit-code: "1"``
    every init container exits with this code
``kubesim.dev/exec: '{"stdout": "hi\\n", "stderr": "", "exitCode": 0}'``
    what every exec into a running container of the pod prints and how it exits
    (without it an exec prints nothing and exits 0; stdin is not read)
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from kubesim.kubelet_base import SimulatedKubelet, annotation, is_true
from kubesim.kubelet_runtime import (
    ContainerHandle,
    ContainerRuntime,
    ExecOutcome,
    ExecRequest,
    ExecRunner,
    ExecStreams,
    ExitStatus,
    KubeletTimings,
)

log = logging.getLogger(__name__)

EXIT_CODE = "kubesim.dev/exit-code"
EXIT_AFTER = "kubesim.dev/exit-after"
OOM_AFTER = "kubesim.dev/oom-after"
READY_AFTER = "kubesim.dev/ready-after"
NEVER_READY = "kubesim.dev/never-ready"
IGNORE_SIGTERM = "kubesim.dev/ignore-sigterm"
INIT_EXIT_CODE = "kubesim.dev/init-exit-code"
EXEC = "kubesim.dev/exec"
SIGKILL_EXIT = 137


def _number(pod: dict[str, Any], name: str) -> float | None:
    text = annotation(pod, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        meta = pod.get("metadata") or {}
        log.warning(
            "pod %s/%s: annotation %s=%r is not a number; ignored",
            meta.get("namespace"),
            meta.get("name"),
            name,
            text,
        )
        return None


class FakeContainer:
    """A scripted container instance."""

    def __init__(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        timings: KubeletTimings,
        *,
        init: bool,
        main: bool,
    ) -> None:
        self._timings = timings
        self._stopped = asyncio.Event()
        self._exit: float | None = None
        self._exit_status = ExitStatus(0)
        self._ready_after: float | None = 0.0
        self._ignore_sigterm = False
        if init:
            code = _number(pod, INIT_EXIT_CODE)
            self._exit, self._exit_status = timings.init_run, ExitStatus(int(code or 0))
            return
        if container.get("readinessProbe"):
            self._ready_after = timings.start
        if not main:
            return
        oom_after = _number(pod, OOM_AFTER)
        exit_code = _number(pod, EXIT_CODE)
        exit_after = _number(pod, EXIT_AFTER)
        if oom_after is not None:
            self._exit, self._exit_status = oom_after, ExitStatus(SIGKILL_EXIT, "OOMKilled")
        elif exit_code is not None or exit_after is not None:
            self._exit, self._exit_status = exit_after or 0.0, ExitStatus(int(exit_code or 0))
        ready_after = _number(pod, READY_AFTER)
        if ready_after is not None:
            self._ready_after = ready_after
        if is_true(annotation(pod, NEVER_READY)):
            self._ready_after = None
        self._ignore_sigterm = is_true(annotation(pod, IGNORE_SIGTERM))

    async def wait(self) -> ExitStatus:
        if self._exit is None:
            await asyncio.Future()  # runs until stopped (stop() ends the task that awaits this)
        await asyncio.sleep(self._exit or 0)
        return self._exit_status

    async def wait_ready(self) -> None:
        if self._ready_after is None:
            await asyncio.Future()
        await asyncio.sleep(self._ready_after or 0)

    async def stop(self, grace_period: float) -> ExitStatus:
        if self._ignore_sigterm:
            await asyncio.sleep(grace_period)
            return ExitStatus(SIGKILL_EXIT)
        await asyncio.sleep(min(self._timings.stop, grace_period))
        return ExitStatus(0)


class FakeRuntime:
    def __init__(self, timings: KubeletTimings) -> None:
        self._timings = timings

    async def start(
        self, pod: dict[str, Any], container: dict[str, Any], *, init: bool, main: bool, pod_ip: str
    ) -> ContainerHandle:
        return FakeContainer(pod, container, self._timings, init=init, main=main)


class FakeKubelet(SimulatedKubelet):
    """Simulated scheduler + kubelet whose containers are all scripted (see module doc)."""

    def runtime_for(self, container: dict[str, Any], *, main: bool, init: bool) -> ContainerRuntime:
        return FakeRuntime(self.timings)

    def exec_runner(self, pod: dict[str, Any], request: ExecRequest) -> ExecRunner:
        return ScriptedExec(pod)


class ScriptedExec:
    """An exec in the fake kubelet: the output and exit code the pod's annotation scripts."""

    def __init__(self, pod: dict[str, Any]) -> None:
        text = annotation(pod, EXEC)
        try:
            script = json.loads(text) if text else {}
        except json.JSONDecodeError:
            script = {"stderr": f"kubesim: the {EXEC} annotation is not JSON\n", "exitCode": 1}
        self.script = script if isinstance(script, dict) else {}

    async def run(self, streams: ExecStreams) -> ExecOutcome:
        for key, write in (("stdout", streams.write_stdout), ("stderr", streams.write_stderr)):
            if self.script.get(key):
                await write(str(self.script[key]).encode())
        try:
            code = int(self.script.get("exitCode") or 0)
        except (TypeError, ValueError):
            code = 1
        return ExecOutcome(exit_code=code)
