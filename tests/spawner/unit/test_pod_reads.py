"""PodReads: a lone question is one GET, many are one LIST, and "absent" is never stale."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import orjson

from kubecache.spawner.kube_api import KubeApi, KubeApiError, Timeouts
from kubecache.spawner.pod_reads import PodReads
from tests.support.waiting import wait_for

NS = "jhub"
SELECTOR = "component=singleuser-server"
TIMEOUTS = Timeouts(request=2, retry=2)


def raw_pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "uid": "u-" + name},
        "status": {"phase": phase},
    }


class FakeApi:
    """The two calls PodReads makes, over a dict of pods; ``gate`` holds requests in flight."""

    closed = False  # KubeApi's: set when the event loop's clients were closed

    def __init__(self, names: list[str]) -> None:
        self.pods = {name: raw_pod(name) for name in names}
        self.gate: asyncio.Event | None = None
        self.gets: list[str] = []
        self.pages: list[tuple[str, str | None]] = []
        self.expire_next_continue = False
        self.fail: KubeApiError | None = None
        self.unlisted: set[str] = set()  # e.g. labels changed by a modify_pod_hook

    async def _pass(self) -> None:
        await asyncio.sleep(0)  # a request always yields to the loop, like real I/O
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail

    async def read_pod(self, namespace: str, name: str, timeouts: Timeouts) -> Any:
        self.gets.append(name)
        try:
            async with asyncio.timeout(timeouts.retry):  # as the real client's retry deadline
                await self._pass()
        except TimeoutError:
            raise KubeApiError(f"read pod {name}: no answer") from None
        return self.pods.get(name)

    async def list_pods_page(
        self,
        namespace: str,
        *,
        label_selector: str,
        limit: int,
        continue_token: str | None,
        timeouts: Timeouts,
        parse: Callable[[bytes], Any],
    ) -> Any:
        self.pages.append((label_selector, continue_token))
        await self._pass()
        if continue_token and self.expire_next_continue:
            self.expire_next_continue = False
            return KubeApiError("continue expired", status=410)
        hidden = self.unlisted if label_selector else set()
        names = sorted(set(self.pods) - hidden)
        start = int(continue_token or 0)
        chunk = names[start : start + limit]
        more = start + limit < len(names)
        return parse(
            orjson.dumps(
                {
                    "items": [self.pods[n] for n in chunk],
                    "metadata": {"continue": str(start + limit) if more else ""},
                }
            )
        )


def reads_of(api: FakeApi, **options: Any) -> PodReads:
    return PodReads(cast(KubeApi, api), **options)


async def ask(reads: PodReads, name: str, *, max_age: float = 2.0) -> Any:
    return await reads.read(NS, name, label_selector=SELECTOR, timeouts=TIMEOUTS, max_age=max_age)


async def test_a_lone_question_is_one_get() -> None:
    api = FakeApi(["a", "b"])
    reads = reads_of(api)
    read = await ask(reads, "a")
    assert read.record["name"] == "a"
    assert read.via == "get"
    assert api.gets == ["a"]
    assert api.pages == []


async def test_a_thousand_questions_at_once_are_one_get_and_one_paginated_list() -> None:
    names = [f"p{i:04d}" for i in range(1200)]
    api = FakeApi(names)
    reads = reads_of(api, page_size=500)
    results = await asyncio.gather(*(ask(reads, n, max_age=0) for n in names))
    assert [r.record["name"] for r in results] == names
    assert len(api.gets) == 1
    assert api.pages == [(SELECTOR, None), (SELECTOR, "500"), (SELECTOR, "1000")]
    assert reads.stats.lists == 1


async def test_questions_during_a_list_wait_for_the_next_when_they_need_a_newer_answer() -> None:
    api = FakeApi(["a", "b", "c"])
    api.gate = asyncio.Event()
    reads = reads_of(api)
    first = [asyncio.ensure_future(ask(reads, n)) for n in ("a", "b")]  # a GET and a LIST
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    # asked after the LIST was sent: a destructive verdict may not rest on it
    late = asyncio.ensure_future(ask(reads, "c", max_age=0))
    also_late = asyncio.ensure_future(ask(reads, "a", max_age=0))
    # accepts an answer 2 s old: joins the LIST in flight
    tolerant = asyncio.ensure_future(ask(reads, "c", max_age=2))
    await wait_for(lambda: reads.stats.questions == 5, message="every question asked")
    api.gate.set()
    await asyncio.gather(*first, late, also_late, tolerant)
    assert reads.stats.lists == 2  # one more, shared by both late questions
    assert late.result().started > first[1].result().started
    assert tolerant.result().started == first[1].result().started


async def test_a_recent_list_answers_without_a_request_unless_a_newer_answer_is_needed() -> None:
    api = FakeApi(["a", "b"])
    reads = reads_of(api, recent_seconds=60)
    api.gate = asyncio.Event()
    pending = [asyncio.ensure_future(ask(reads, n)) for n in ("a", "b")]
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    api.gate.set()
    await asyncio.gather(*pending)
    sent = (len(api.gets), len(api.pages))
    assert (await ask(reads, "b", max_age=60)).via == "recent"
    assert (len(api.gets), len(api.pages)) == sent
    assert (await ask(reads, "b", max_age=0)).via == "get"


async def test_a_pod_absent_from_a_list_is_confirmed_without_the_label_selector() -> None:
    """A modify_pod_hook may have dropped the component label: absence must be the API's word."""
    api = FakeApi(["a", "hooked"])
    api.unlisted = {"hooked"}
    reads = reads_of(api)
    a, hooked, gone = await asyncio.gather(*(ask(reads, n) for n in ("a", "hooked", "gone")))
    assert a.record is not None
    assert hooked.record is not None and hooked.record["name"] == "hooked"
    assert gone.record is None
    assert reads.stats.absent_confirmations == 2
    # the lone GET of "a", one LIST with the selector, then the confirmations: a GET and
    # one LIST of the whole namespace
    assert [selector for selector, _ in api.pages] == [SELECTOR, ""]
    assert api.gets == ["a", "hooked"]


async def test_many_absent_pods_are_confirmed_by_one_list_of_the_namespace() -> None:
    names = [f"p{i:04d}" for i in range(600)]
    api = FakeApi(names[:100])  # 500 pods deleted behind the cache's back
    reads = reads_of(api)
    results = await asyncio.gather(*(ask(reads, n, max_age=0) for n in names))
    assert sum(1 for r in results if r.record is None) == 500
    assert len(api.gets) == 2  # the first question and the first confirmation
    assert reads.stats.lists == 2  # with the selector, then without


async def test_an_expired_continue_token_lists_again_from_the_start() -> None:
    api = FakeApi([f"p{i}" for i in range(5)])
    api.expire_next_continue = True
    reads = reads_of(api, page_size=2)
    api.gate = asyncio.Event()
    pending = [asyncio.ensure_future(ask(reads, f"p{i}")) for i in range(5)]
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    api.gate.set()
    results = await asyncio.gather(*pending)
    assert all(r.record is not None for r in results)
    assert [token for _, token in api.pages] == [None, "2", None, "2", "4"]


async def test_a_failed_list_fails_every_question_it_was_to_answer() -> None:
    api = FakeApi(["a", "b", "c"])
    api.fail = KubeApiError("Could not list pods: HTTP 503")
    reads = reads_of(api)
    results = await asyncio.gather(*(ask(reads, n) for n in "abc"), return_exceptions=True)
    assert all(isinstance(r, KubeApiError) for r in results)


async def test_a_list_that_does_not_answer_in_time_is_an_error_for_the_waiting_question() -> None:
    api = FakeApi(["a", "b"])
    api.gate = asyncio.Event()  # never opened
    reads = reads_of(api)
    timeouts = Timeouts(request=0.05, retry=0.05)
    questions = [
        reads.read(NS, n, label_selector=SELECTOR, timeouts=timeouts, max_age=0) for n in "ab"
    ]
    results = await asyncio.gather(*questions, return_exceptions=True)
    # the GET hangs in the fake (the real client bounds it); the LIST waiter gives up in time
    assert isinstance(results[1], KubeApiError)
    assert "within 0.05 s" in str(results[1])
    api.gate.set()


async def test_without_a_selector_reads_share_a_list_of_the_whole_namespace() -> None:
    api = FakeApi(["a", "b", "c"])
    reads = reads_of(api)
    results = await asyncio.gather(
        *(reads.read(NS, n, label_selector="", timeouts=TIMEOUTS, max_age=0) for n in "abc")
    )
    assert all(r.record is not None for r in results)
    assert api.pages == [("", None)]
    assert reads.stats.absent_confirmations == 0


class NoListApi(FakeApi):
    """The least-privilege hub Role: get, create, delete on pods, no list."""

    async def list_pods_page(self, namespace: str, **kwargs: Any) -> Any:
        self.pages.append((kwargs["label_selector"], kwargs["continue_token"]))
        await asyncio.sleep(0)
        raise KubeApiError("list pods: Forbidden", status=403)


async def test_a_hub_that_may_not_list_answers_every_question_with_bounded_gets() -> None:
    names = [f"p{i:03d}" for i in range(100)]
    api = NoListApi(names)
    api.pods.pop("p050")  # gone: the answer must say so, not fail
    reads = reads_of(api)
    results = await asyncio.gather(*(ask(reads, n, max_age=0) for n in names))
    assert [r.record is None for r in results] == [n == "p050" for n in names]
    assert len(api.pages) == 1  # refused once, then remembered for the namespace
    assert sorted(set(api.gets)) == names
    # later bursts go straight to GETs
    await asyncio.gather(*(ask(reads, n, max_age=0) for n in names[:10]))
    assert len(api.pages) == 1


async def test_other_list_failures_still_reach_the_caller() -> None:
    api = FakeApi(["a", "b"])
    api.gate = asyncio.Event()
    reads = reads_of(api)
    first = asyncio.ensure_future(ask(reads, "a"))  # the lone GET
    await wait_for(lambda: len(api.gets) == 1, message="the GET sent")
    second = asyncio.ensure_future(ask(reads, "b"))  # joins a LIST
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    api.fail = KubeApiError("list pods: HTTP 503", status=503)
    api.gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, KubeApiError) and r.status == 503 for r in results)


class SlowListApi(FakeApi):
    """Each LIST page takes ``page_seconds``, a GET ``get_seconds`` (as under API latency)."""

    def __init__(self, names: list[str], *, page_seconds: float, get_seconds: float) -> None:
        super().__init__(names)
        self.page_seconds = page_seconds
        self.get_seconds = get_seconds

    async def read_pod(self, namespace: str, name: str, timeouts: Timeouts) -> Any:
        self.gets.append(name)
        try:
            async with asyncio.timeout(timeouts.retry):
                await asyncio.sleep(self.get_seconds)
        except TimeoutError:
            raise KubeApiError(f"read pod {name}: no answer") from None
        return self.pods.get(name)

    async def list_pods_page(self, namespace: str, **kwargs: Any) -> Any:
        await asyncio.sleep(self.page_seconds)
        return await super().list_pods_page(namespace, **kwargs)


async def must_ask(reads: PodReads, name: str, *, max_age: float = 1.0, budget: float = 1.0) -> Any:
    return await reads.read(
        NS,
        name,
        label_selector=SELECTOR,
        timeouts=Timeouts(request=budget, retry=budget),
        max_age=max_age,
        must_answer=True,
    )


async def test_a_question_that_must_be_answered_is_a_get_when_the_list_cannot_end_in_time() -> None:
    """issue 19: at 5,000 pods and 400 ms a request, a LIST of 10 pages never fit in 3 s."""
    names = [f"p{i}" for i in range(10)]
    api = SlowListApi(names, page_seconds=0.3, get_seconds=0.01)
    reads = reads_of(api, page_size=2)  # 5 pages: 1.5 s
    # polls keep a LIST in flight, as a hub whose cache cannot answer does
    polls = [asyncio.ensure_future(ask(reads, n)) for n in names]
    await asyncio.gather(*polls, return_exceptions=True)
    assert reads._namespaces[(NS, SELECTOR)].list_seconds is not None
    more_polls = [asyncio.ensure_future(ask(reads, n, max_age=0)) for n in names]
    await wait_for(lambda: len(api.pages) > 5, message="the next LIST sent")
    gets_before = len(api.gets)
    read = await must_ask(reads, "p3", budget=1.0)
    assert read.record is not None and read.via == "get"
    assert len(api.gets) == gets_before + 1
    assert reads.stats.gets_instead_of_list == 1
    await asyncio.gather(*more_polls, return_exceptions=True)


async def test_a_question_on_a_late_list_sends_a_get_while_one_still_fits() -> None:
    names = ["a", "b", "c"]
    api = SlowListApi(names, page_seconds=0.0, get_seconds=0.01)
    api.gate = asyncio.Event()  # LIST pages hang: the first LIST's length is not known yet
    reads = reads_of(api)
    first = asyncio.ensure_future(ask(reads, "a"))  # the lone GET (not gated in this fake)
    second = asyncio.ensure_future(ask(reads, "b"))  # a LIST
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    read = await must_ask(reads, "c", max_age=1.0, budget=0.6)  # joins it, then GETs
    assert read.via == "get" and read.record is not None
    assert reads.stats.gets_instead_of_list == 1
    # a poll is no such question: it keeps waiting on the LIST and gives up in time
    api.gate.set()
    await asyncio.gather(first, second)


async def test_a_list_that_predates_the_pod_is_no_sign_of_changed_labels() -> None:
    api = FakeApi(["a", "b"])
    api.gate = asyncio.Event()
    reads = reads_of(api)
    pending = [asyncio.ensure_future(ask(reads, n)) for n in ("a", "b")]
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    api.gate.set()
    await asyncio.gather(*pending)
    # created after the LIST: absent from it, found by the confirmation, labels match
    api.pods["new"] = raw_pod("new")
    api.pods["new"]["metadata"]["labels"] = {"component": "singleuser-server"}
    api.pods["hooked"] = raw_pod("hooked")
    api.pods["hooked"]["metadata"]["labels"] = {"component": "something-else"}
    new = await ask(reads, "new", max_age=5)
    hooked = await ask(reads, "hooked", max_age=5)
    assert new.record is not None and new.unmatched_selector is None
    assert hooked.record is not None and hooked.unmatched_selector == SELECTOR


class FailingListApi(FakeApi):
    """GETs answer; a LIST waits for ``list_gate`` and then fails with 503."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.list_gate = asyncio.Event()

    async def list_pods_page(self, namespace: str, **kwargs: Any) -> Any:
        self.pages.append((kwargs["label_selector"], kwargs["continue_token"]))
        await self.list_gate.wait()
        raise KubeApiError("list pods: HTTP 503", status=503)


async def test_a_question_that_must_be_answered_reads_alone_when_its_list_fails() -> None:
    api = FailingListApi(["a", "b", "c"])
    api.gate = asyncio.Event()
    reads = reads_of(api)
    first = asyncio.ensure_future(ask(reads, "a"))  # the lone GET (held at the gate)
    await wait_for(lambda: len(api.gets) == 1, message="the GET sent")
    poll = asyncio.ensure_future(ask(reads, "b"))  # a LIST
    started = asyncio.ensure_future(must_ask(reads, "c", budget=2.0))  # joins it
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    api.gate.set()
    api.list_gate.set()
    results = await asyncio.gather(first, poll, started, return_exceptions=True)
    assert isinstance(results[1], KubeApiError)  # a poll keeps the server running instead
    assert not isinstance(results[2], BaseException) and results[2].via == "get"
    assert api.gets == ["a", "c"]


async def test_questions_on_a_hung_list_give_up_each_at_its_own_time_with_one_timer() -> None:
    api = FakeApi(["a", "b", "c", "d"])
    api.gate = asyncio.Event()
    reads = reads_of(api)
    lone = asyncio.ensure_future(ask(reads, "a"))  # the lone GET (held at the gate)
    await wait_for(lambda: len(api.gets) == 1, message="the GET sent")

    def asking(name: str, budget: float) -> asyncio.Future[Any]:
        timeouts = Timeouts(request=budget, retry=budget)
        return asyncio.ensure_future(
            reads.read(NS, name, label_selector=SELECTOR, timeouts=timeouts, max_age=5)
        )

    long = asking("b", 30.0)
    short = asking("c", 0.2)
    cancelled = asking("d", 30.0)
    await wait_for(lambda: len(api.pages) == 1, message="the LIST sent")
    listing = reads._namespaces[(NS, SELECTOR)].in_flight
    assert listing is not None and len(listing.waiters) == 3
    assert listing.timer is not None  # one for all of them: the earliest's
    cancelled.cancel()
    try:
        await asyncio.wait_for(short, 10)
        raise AssertionError("the question on the hung LIST was answered")
    except KubeApiError as e:
        assert "within 0.2 s" in str(e)
    assert not long.done()  # the others wait on
    assert listing.timer is not None  # armed again for the next one's time
    api.gate.set()
    read = await asyncio.wait_for(long, 10)
    assert read.via == "list" and read.record is not None
    assert (await lone).via == "get"
    assert listing.timer is None and listing.waiters == []
    assert cancelled.cancelled()
