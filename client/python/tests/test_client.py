"""The typed client against a real taskd: submit, get, list, cancel, stats,
watch, and a DAG in one call."""

import datetime as dt

import pytest

import taskd
from taskd import After, NewTask, TaskStatus


def test_a_submitted_task_runs_and_its_result_reads_back(client):
    task = client.submit("diag.echo", {"document_id": "123", "pages": 12, "ratio": 0.5}, name="echo me")
    # A free slot takes it in the commit that creates it: answered RUNNING.
    assert task.status is TaskStatus.RUNNING, "answered as it was made durable: already leased"
    assert len(task.attempts) == 1
    assert task.params == {"document_id": "123", "pages": 12, "ratio": 0.5}, "whole numbers stay ints"
    done = client.wait(task.id, timeout=30)
    assert done.status is TaskStatus.COMPLETED
    assert done.name == "echo me"
    assert done.result == {"document_id": "123", "pages": 12, "ratio": 0.5}
    assert [attempt.outcome for attempt in done.attempts] == [taskd.AttemptOutcome.SUCCEEDED]
    assert client.get(task.id).revision == done.revision


def test_an_unknown_task_type_is_refused_naming_the_field_and_the_likely_typo(client):
    with pytest.raises(taskd.InvalidArgument) as refused:
        client.submit("report_generaton")
    assert refused.value.message.startswith("task_type: unknown task type")
    assert 'did you mean "report_generation"?' in refused.value.message


def test_a_dag_is_submitted_whole_and_runs_in_dependency_order(client):
    tasks = client.submit_many(
        [
            NewTask("diag.echo", {"step": "index"}, ref="index", depends_on=["chunk-a", "chunk-b"]),
            NewTask("diag.echo", {"step": "a"}, ref="chunk-a"),
            NewTask("diag.echo", {"step": "b"}, ref="chunk-b"),
        ]
    )
    index, chunk_a, chunk_b = tasks
    assert index.status is TaskStatus.WAITING
    assert sorted(index.dependencies) == sorted([chunk_a.id, chunk_b.id])
    finished = client.wait(index.id, timeout=30)
    assert finished.status is TaskStatus.COMPLETED
    assert finished.started_at >= max(client.get(chunk_a.id).completed_at, client.get(chunk_b.id).completed_at)


def test_a_batch_with_one_bad_member_creates_nothing(client):
    before = client.stats().counts["total"]
    with pytest.raises(taskd.InvalidArgument) as refused:
        client.submit_many([NewTask("diag.echo"), NewTask("diag.echo", timeout=0)])
    assert refused.value.message.startswith("tasks[1].timeout")
    assert client.stats().counts["total"] == before


def test_cancel_ends_a_scheduled_task_and_says_why(client):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    task = client.submit("diag.echo", run_at=later)
    assert task.status is TaskStatus.SCHEDULED
    cancelled = client.cancel(task.id, "not needed")
    assert cancelled.status is TaskStatus.CANCELLED
    assert "not needed" in cancelled.status_reason
    with pytest.raises(taskd.FailedPrecondition):
        client.cancel(task.id)
    with pytest.raises(taskd.NotFound):
        client.get("01890a5d-ac96-774b-bcce-b302099a8057")


def test_dependents_of_a_task_that_failed_are_cancelled_or_run_as_required(client):
    failing = client.submit("diag.fail", {"message": "boom"}, max_retries=0)
    on_success = client.submit("diag.echo", depends_on=[failing])
    on_failure = client.submit("diag.echo", depends_on=[After(failing, TaskStatus.FAILED)])
    assert client.wait(failing.id, timeout=30).error == "boom"
    assert client.wait(on_success.id, timeout=30).status is TaskStatus.CANCELLED
    assert client.wait(on_failure.id, timeout=30).status is TaskStatus.COMPLETED


def test_lists_page_through_every_match_newest_first(client):
    label = {"suite": "paging"}
    submitted = [client.submit("diag.echo", labels=label).id for _ in range(7)]
    page = client.list(task_type="diag.echo", labels=label, page_size=3)
    assert len(page.tasks) == 3 and page.next_page_token
    every = [task.id for task in client.iter_tasks(task_type="diag.echo", labels=label, page_size=3)]
    assert every == list(reversed(submitted))


def test_lists_find_by_part_of_a_name_and_the_dependents_of_a_task(client):
    root, child, _other = client.submit_many(
        [
            NewTask("document_processing", name="Quarterly Import", ref="root"),
            NewTask("vector_store_update", name="reindex", depends_on=["root"]),
            NewTask("document_processing", name="unrelated"),
        ]
    )
    assert [task.id for task in client.list(name_contains="QUARTERLY").tasks] == [root.id]
    assert [task.id for task in client.list(depends_on=root).tasks] == [child.id]
    with pytest.raises(taskd.InvalidArgument) as refused:
        client.list(depends_on="not-an-id")
    assert "depends_on" in str(refused.value)


def test_a_watch_reports_each_change_until_the_task_ends(client):
    task = client.submit("diag.sleep", {"duration_ms": 50})
    kinds, statuses = [], []
    with client.watch(task.id) as events:
        for event in events:
            kinds.append(event.kind)
            statuses.append(event.task.status)
    assert kinds[0] is taskd.EventKind.SNAPSHOT
    assert statuses[-1] is TaskStatus.COMPLETED
    assert TaskStatus.RUNNING in statuses


@pytest.fixture()
def fresh_client():
    """A server of the test's own: its counts are the test's alone."""
    from conftest import Server

    running = Server()
    try:
        with taskd.Client(running.address, timeout=30) as connected:
            yield connected
    finally:
        running.stop()


def test_stats_count_by_status_and_type(fresh_client):
    client = fresh_client
    done = client.submit("diag.echo")
    failed = client.submit("diag.fail", {"message": "no"}, max_retries=0)
    client.submit("document_processing")
    client.wait(done.id, timeout=30)
    client.wait(failed.id, timeout=30)
    stats = client.stats()
    assert stats.counts == {
        "pending": 1,
        "scheduled": 0,
        "running": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "waiting": 0,
        "total": 3,
    }
    assert stats.by_type["diag.echo"]["completed"] == 1
    assert stats.by_type["diag.fail"]["failed"] == 1
    assert stats.unserved_task_types == ["document_processing"]
    assert stats.success_rate == 0.5
    assert stats.max_concurrent_tasks == 10, "the default"
    known = {info.task_type: info for info in client.task_types()}
    assert known["diag.echo"].handler_available
    assert not known["document_processing"].handler_available, "known, but nothing serves it yet"


def test_enums_print_their_names_as_the_server_writes_them(client):
    task = client.submit("diag.echo")
    done = client.wait(task.id, timeout=30)
    assert str(done.status) == "COMPLETED"
    assert f"{done.status} {done.priority:>8}" == "COMPLETED   NORMAL"
    assert str(done.attempts[0].outcome) == "SUCCEEDED"
    with client.watch(task.id) as events:
        assert str(next(iter(events)).kind) == "SNAPSHOT"
    assert done.status == 4 and done.status is TaskStatus.COMPLETED, "still the wire's numbers"


def test_the_async_client_does_the_same_awaited(server):
    import asyncio

    async def scenario():
        async with taskd.AsyncClient(server.address) as client:
            task = await client.submit("diag.echo", {"n": 1})
            done = await client.wait(task.id, timeout=30)
            assert done.status is TaskStatus.COMPLETED
            known = {info.task_type for info in await client.task_types()}
            assert {"diag.echo", "document_processing"} <= known
            parked = await client.submit("document_processing")
            with pytest.raises(TimeoutError):
                await client.wait(parked.id, timeout=0.2)
            page = await client.list(task_type="diag.echo", page_size=1)
            assert len(page.tasks) == 1
            tasks = await asyncio.gather(*(client.submit_buffered("diag.echo", {"n": n}) for n in range(50)))
            assert len({task.id for task in tasks}) == 50
            assert [task.params["n"] for task in tasks] == list(range(50))

    asyncio.run(scenario())


def test_a_schedule_is_created_read_paused_triggered_and_deleted(client):
    created = client.create_schedule(
        "py-nightly",
        "document_processing",
        cron="30 2 * * *",
        time_zone="Europe/Paris",
        params={"document_id": "42"},
        overlap="allow_all",
    )
    assert created.spec == "cron 30 2 * * * (Europe/Paris)"
    assert len(created.next_fire_times) == 5
    assert all(moment.tzinfo is not None for moment in created.next_fire_times)
    assert "py-nightly" in [schedule.name for schedule in client.schedules()]
    paused = client.pause_schedule("py-nightly", "audit")
    assert paused.paused and paused.pause_note == "audit"
    task = client.trigger_schedule("py-nightly")
    assert task.labels["schedule"] == "py-nightly"
    assert task.params == {"document_id": "42"}
    fire = client.get_schedule("py-nightly").recent_fires[0]
    assert fire.task_id == task.id
    assert isinstance(fire.status, taskd.TaskStatus)
    client.delete_schedule("py-nightly")
    with pytest.raises(taskd.NotFound):
        client.get_schedule("py-nightly")
    with pytest.raises(taskd.InvalidArgument) as refused:
        client.create_schedule("py-broken", "document_processing", every=0.1)
    assert refused.value.message.startswith("schedule.spec.interval.every: at least 1s")


def test_a_schedule_is_updated_and_backfilled_once_per_fire(client):
    import datetime as dt

    client.create_schedule("py-hourly", "document_processing", every=3600)
    updated = client.update_schedule("py-hourly", "document_processing", every=1800, params={"n": 1})
    assert updated.spec == "every 1800s"
    end = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    backfilled = client.backfill_schedule("py-hourly", end - dt.timedelta(hours=2), end)
    assert len(backfilled) == 4, "10:30, 11:00, 11:30 and 12:00"
    assert all(task.params == {"n": 1} for task in backfilled)
    again = client.backfill_schedule("py-hourly", end - dt.timedelta(hours=2), end)
    assert [task.id for task in again] == [task.id for task in backfilled]
    client.delete_schedule("py-hourly")



def test_a_schedules_tasks_carry_its_retries_timeout_and_backoff_and_its_fires_are_bounded(client):
    import datetime as dt

    end = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)
    created = client.create_schedule(
        "py-bounded",
        "document_processing",
        every=60,
        max_retries=7,
        timeout=90,
        retry_backoff=2.5,
        retry_multiplier=3,
        end_time=end,
        max_fires=10,
    )
    assert created.proto.definition.max_fires == 10
    assert created.proto.definition.end_time.ToDatetime(dt.timezone.utc) == end
    task = client.trigger_schedule("py-bounded")
    assert task.max_retries == 7
    assert task.timeout == 90
    assert task.proto.retry_policy.initial_backoff.ToTimedelta() == dt.timedelta(seconds=2.5)
    assert task.proto.retry_policy.multiplier == 3
    client.delete_schedule("py-bounded")
    with pytest.raises(ValueError, match="end_time must be timezone-aware"):
        client.create_schedule("py-naive", "document_processing", every=60, end_time=dt.datetime(2031, 1, 1))


def test_run_submits_and_answers_the_ended_task_in_one_call(client):
    done = client.run("diag.echo", {"n": 7})
    assert done.status is TaskStatus.COMPLETED
    assert done.result == {"n": 7}
    failed = client.run("diag.fail", {"message": "boom"}, max_retries=0)
    assert failed.status is TaskStatus.FAILED and "boom" in failed.error
    # Past its wait, the task is answered as it is.
    parked = client.run("document_processing", wait=0.2)
    assert parked.status is TaskStatus.PENDING
    with pytest.raises(ValueError, match="wait"):
        client.run("diag.echo", wait=0)


def test_a_submitted_task_waits_for_its_own_end(client):
    task = client.submit("diag.echo", {"n": 1})
    done = task.wait(timeout=10)
    assert done.status is TaskStatus.COMPLETED and done.result == {"n": 1}
    assert done.wait() is done, "an ended task is its own answer"


def test_the_async_client_runs_and_waits_alike(server):
    import asyncio

    async def scenario():
        async with taskd.AsyncClient(server.address) as client:
            done = await client.run("diag.echo", {"n": 2})
            assert done.result == {"n": 2}
            task = await client.submit("diag.echo", {"n": 3})
            assert (await task.wait(timeout=10)).result == {"n": 3}

    asyncio.run(scenario())
