"""The buffered submitter: many threads' submits coalesced, each caller
getting its own task or its own error."""

import threading

import pytest

import taskd


def test_submits_of_many_threads_each_get_their_own_durable_task(client):
    with client.submitter() as submitter:
        results = {}

        def submit_some(thread: int) -> None:
            for index in range(20):
                task = submitter.submit("document_processing", {"thread": thread, "index": index})
                results[(thread, index)] = task

        threads = [threading.Thread(target=submit_some, args=(thread,)) for thread in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 32 * 20
    assert len({task.id for task in results.values()}) == 32 * 20, "one task per submit"
    for (thread, index), task in results.items():
        assert task.params == {"thread": thread, "index": index}
        assert task.status is taskd.TaskStatus.PENDING


def test_a_bad_submit_fails_alone_and_its_neighbours_are_created(client):
    with client.submitter(linger=0.05) as submitter:
        good = [submitter.submit_future("document_processing", {"n": n}) for n in range(5)]
        bad = submitter.submit_future("no.such.type")
        repeated = [submitter.submit_future("document_processing", idempotency_key="same-key") for _ in range(2)]
        tasks = [future.result(timeout=30) for future in good]
        with pytest.raises(taskd.InvalidArgument) as refused:
            bad.result(timeout=30)
        assert refused.value.message.startswith("task_type: unknown task type")
        assert len({task.id for task in tasks}) == 5
        first, second = (future.result(timeout=30) for future in repeated)
        assert first.id == second.id, "an idempotency key means one task"


def test_client_submit_buffered_coalesces_the_submits_of_threads_and_close_sends_them(server):
    client = taskd.Client(server.address, timeout=30)
    tasks = []
    lock = threading.Lock()

    def submit(index: int) -> None:
        task = client.submit_buffered("document_processing", {"index": index})
        with lock:
            tasks.append(task)

    threads = [threading.Thread(target=submit, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert sorted(task.params["index"] for task in tasks) == list(range(16))
    assert len({task.id for task in tasks}) == 16


def test_async_client_submitter_lingers_for_company_and_answers_each_coroutine(server):
    import asyncio

    async def main():
        async with taskd.AsyncClient(server.address, timeout=30) as client:
            submitter = client.submitter(linger=0.02)
            return await asyncio.gather(
                *(submitter.submit(taskd.NewTask("document_processing", {"n": n})) for n in range(10))
            )

    tasks = asyncio.run(main())
    assert [task.params["n"] for task in tasks] == list(range(10))
    assert len({task.id for task in tasks}) == 10
