"""Pure construction of the Event objects a kubelet and kube-scheduler write about pods.

Two shapes exist on a real cluster and both are reproduced:

- the kubelet records through the core/v1 recorder: ``count``,
  ``firstTimestamp``/``lastTimestamp`` (seconds), ``eventTime: null``,
  ``source {component: kubelet, host: <node>}``, reportingComponent ``kubelet``,
  reportingInstance ``<node>``; a repeat of the same (reason, message, object)
  increments ``count`` and moves ``lastTimestamp`` on the same object;
- kube-scheduler records through the events.k8s.io/v1 recorder, which reads
  back through core/v1 as ``eventTime`` (microseconds), ``firstTimestamp`` and
  ``lastTimestamp`` null, ``source {}``, ``action`` (Binding / Scheduling),
  reportingInstance ``default-scheduler-<host>``; a repeat adds
  ``series {count, lastObservedTime}`` (``count`` stays absent).

Messages use the wording of current Kubernetes (1.31+).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

KUBELET = "kubelet"
SCHEDULER = "default-scheduler"


def rfc3339(moment: datetime) -> str:
    """metav1.Time: whole seconds, UTC, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: microseconds, UTC, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime:
    return datetime.now(UTC)


_last_suffix = 0


def event_name(object_name: str) -> str:
    """``<object>.<hex of the UnixNano clock>``, as client-go names events (unique per process)."""
    global _last_suffix
    suffix = max(time.time_ns(), _last_suffix + 1)
    _last_suffix = suffix
    return f"{object_name}.{suffix:x}"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() at millisecond precision: 523ms, 1.2s, 1m3.5s."""
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    minutes, rest = divmod(millis, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


def container_field_path(container: str, *, init: bool = False) -> str:
    return f"spec.{'initContainers' if init else 'containers'}{{{container}}}"


def involved_pod(pod: Mapping[str, Any], field_path: str | None = None) -> dict[str, Any]:
    """involvedObject for a pod, at the pod's resourceVersion when the event was recorded."""
    metadata = pod.get("metadata") or {}
    involved: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "resourceVersion": metadata.get("resourceVersion"),
        "uid": metadata.get("uid"),
    }
    if field_path:
        involved["fieldPath"] = field_path
    return involved


def kubelet_event(
    pod: Mapping[str, Any],
    *,
    node: str,
    reason: str,
    message: str,
    type_: str = "Normal",
    field_path: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A core/v1 Event as the kubelet on ``node`` creates it."""
    moment = rfc3339(now or utcnow())
    metadata = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(metadata.get("name") or "pod"),
            "namespace": metadata.get("namespace"),
        },
        "involvedObject": involved_pod(pod, field_path),
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": KUBELET, "host": node},
        "reportingComponent": KUBELET,
        "reportingInstance": node,
        "firstTimestamp": moment,
        "lastTimestamp": moment,
        "count": 1,
        "eventTime": None,
    }


def bump_count(event: dict[str, Any], *, now: datetime | None = None) -> None:
    """The core/v1 recorder's aggregation of a repeat: count + 1, lastTimestamp now (in place)."""
    event["count"] = int(event.get("count") or 1) + 1
    event["lastTimestamp"] = rfc3339(now or utcnow())


def scheduler_event(
    pod: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    action: str,
    type_: str = "Normal",
    instance: str = "kubesim",
    now: datetime | None = None,
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event from kube-scheduler, in its core/v1 rendering."""
    metadata = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(metadata.get("name") or "pod"),
            "namespace": metadata.get("namespace"),
        },
        "involvedObject": involved_pod(pod),
        "reason": reason,
        "message": message,
        "type": type_,
        "action": action,
        "source": {},
        "reportingComponent": SCHEDULER,
        "reportingInstance": f"{SCHEDULER}-{instance}",
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": micro_time(now or utcnow()),
    }


def bump_series(event: dict[str, Any], *, now: datetime | None = None) -> None:
    """The events/v1 recorder's repeat: series.count + 1 (starting at 2), lastObservedTime now."""
    series = event.get("series") or {"count": 1}
    event["series"] = {
        "count": int(series.get("count") or 1) + 1,
        "lastObservedTime": micro_time(now or utcnow()),
    }


def pod_display(pod: Mapping[str, Any]) -> str:
    """klog's format.Pod: ``name_namespace(uid)``."""
    metadata = pod.get("metadata") or {}
    return f"{metadata.get('name')}_{metadata.get('namespace')}({metadata.get('uid')})"


# --- messages -------------------------------------------------------------------------------


def scheduled_message(pod: Mapping[str, Any], node: str) -> str:
    metadata = pod.get("metadata") or {}
    return f"Successfully assigned {metadata.get('namespace')}/{metadata.get('name')} to {node}"


def pulling_message(image: str) -> str:
    return f'Pulling image "{image}"'


def pulled_message(image: str, *, seconds: float, waited: float, size: int) -> str:
    return (
        f'Successfully pulled image "{image}" in {go_duration(seconds)} '
        f"({go_duration(waited)} including waiting). Image size: {size} bytes."
    )


def already_present_message(image: str) -> str:
    return f'Container image "{image}" already present on machine'


def pull_error_detail(image: str) -> str:
    """What containerd reports for a tag that does not exist."""
    reference = qualified_image(image)
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{reference}": '
        f'failed to resolve reference "{reference}": {reference}: not found'
    )


def failed_pull_message(image: str) -> str:
    return f'Failed to pull image "{image}": {pull_error_detail(image)}'


def error_message(reason: str) -> str:
    """``Error: ErrImagePull`` / ``Error: ImagePullBackOff``."""
    return f"Error: {reason}"


def back_off_pull_message(image: str) -> str:
    return f'Back-off pulling image "{image}"'


def created_message(container: str) -> str:
    return f"Created container: {container}"


def started_message(container: str) -> str:
    return f"Started container {container}"


def killing_message(container: str) -> str:
    return f"Stopping container {container}"


def back_off_restart_message(container: str, pod: Mapping[str, Any]) -> str:
    return f"Back-off restarting failed container {container} in pod {pod_display(pod)}"


def qualified_image(image: str) -> str:
    """docker.io normalisation: ``python:3`` → ``docker.io/library/python:3``."""
    name = image
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name
