"""The SDK against a taskd that wants tokens, speaks TLS, asks for client
certificates or sheds load: every call carries the token (unary, streams,
the worker's bidirectional stream, sync and asyncio), refusals arrive as
taskd exceptions naming what is missing, TLS and mutual TLS connect with
the right files and not without them."""

import asyncio
import datetime as dt
import subprocess
from pathlib import Path

import grpc
import pytest

import taskd
from taskd import TaskStatus

from conftest import InThread, Server

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
SUBMITTER = "submitter-token-0123456789abc"
WORKER = "worker-token-0123456789abcdef"

TOKENS = ";".join(
    [
        f"ops admin {ADMIN}",
        f"dashboard read {READER}",
        f"ci submit,read {SUBMITTER}",
        f"py-worker worker {WORKER}",
    ]
)

#: Every wait in this module is bounded by this many seconds.
WAIT = 30


def _serve(*args: str, env=None):
    running = Server(*args, env=env)
    yield running
    running.stop()


def _port(server: Server) -> str:
    return server.address.rsplit(":", 1)[1]


@pytest.fixture(scope="module")
def secured():
    """A plaintext taskd on loopback that wants tokens."""
    yield from _serve(env={"TASKD_AUTH_TOKENS": TOKENS})


@pytest.fixture()
def admin(secured):
    with taskd.Client(secured.address, token=ADMIN, timeout=WAIT) as connected:
        yield connected


# --- Tokens over plaintext: the interceptors --------------------------------


def test_a_call_without_a_token_or_with_an_unknown_one_is_unauthenticated(secured):
    with taskd.Client(secured.address, timeout=WAIT) as anonymous:
        with pytest.raises(taskd.Unauthenticated):
            anonymous.stats()
        with pytest.raises(taskd.Unauthenticated):
            anonymous.submit("diag.echo")
    with taskd.Client(secured.address, token="not-a-token-anyone-knows", timeout=WAIT) as stranger:
        with pytest.raises(taskd.Unauthenticated):
            stranger.stats()


def test_a_read_token_reads_but_a_submit_is_denied_naming_the_scope(secured):
    with taskd.Client(secured.address, token=READER, timeout=WAIT) as reader:
        reader.stats()
        with pytest.raises(taskd.PermissionDenied) as denied:
            reader.submit("diag.echo")
    assert "submit" in denied.value.message


def test_a_submit_token_submits_and_watches_the_task_to_its_end(secured):
    with taskd.Client(secured.address, token=SUBMITTER, timeout=WAIT) as ci:
        task = ci.submit("diag.echo", {"hello": "auth"})
        done = ci.wait(task.id, timeout=WAIT)  # a server stream
        assert done.status is TaskStatus.COMPLETED
        assert done.result == {"hello": "auth"}
        with ci.watch(task.id) as events:
            assert next(events).task.id == task.id
        (batched,) = ci.submit_many([taskd.NewTask("diag.echo")])
        assert batched.id


def test_a_watch_without_a_token_fails_with_unauthenticated(secured, admin):
    task = admin.submit("diag.echo")
    with taskd.Client(secured.address, timeout=WAIT) as anonymous:
        with pytest.raises(taskd.Unauthenticated):
            anonymous.wait(task.id, timeout=WAIT)


def test_the_token_defaults_from_the_environment_and_never_shows(secured, monkeypatch):
    monkeypatch.setenv("TASKD_TOKEN", SUBMITTER)
    with taskd.Client(f"http://{secured.address}", timeout=WAIT) as ci:
        assert ci.submit("diag.echo").id
        assert SUBMITTER not in repr(ci) and SUBMITTER not in repr(ci._settings)
    worker = taskd.Worker(secured.address)
    assert SUBMITTER not in repr(worker)


def test_the_submitter_passes_auth_refusals_to_every_caller(secured):
    with taskd.Client(secured.address, token=READER, timeout=WAIT) as reader:
        with reader.submitter(linger=0.05) as submitter:
            futures = [submitter.submit_future("diag.echo") for _ in range(3)]
            for future in futures:
                with pytest.raises(taskd.PermissionDenied):
                    future.result(timeout=WAIT)


def test_an_async_client_carries_the_token_on_calls_and_streams(secured):
    async def scenario():
        async with taskd.AsyncClient(secured.address, token=SUBMITTER, timeout=WAIT) as ci:
            task = await ci.submit("diag.echo", {"from": "asyncio"})
            done = await asyncio.wait_for(ci.wait(task.id), WAIT)  # a server stream
            assert done.result == {"from": "asyncio"}
            buffered = await ci.submit_buffered("diag.echo")
            assert buffered.id
        async with taskd.AsyncClient(secured.address, timeout=WAIT) as anonymous:
            with pytest.raises(taskd.Unauthenticated):
                await anonymous.stats()
        async with taskd.AsyncClient(secured.address, token=READER, timeout=WAIT) as reader:
            with pytest.raises(taskd.PermissionDenied):
                await reader.submit_buffered("diag.echo")

    asyncio.run(scenario())


def test_a_worker_with_a_worker_token_serves_a_task(secured, admin):
    worker = taskd.Worker(secured.address, worker_id="py-authorized", token=WORKER)
    worker.handle("py.secured", lambda run: {"served_by": "py-authorized"})
    running = InThread(worker, admin)
    try:
        task = admin.submit("py.secured")
        done = admin.wait(task.id, timeout=WAIT)
        assert done.status is TaskStatus.COMPLETED
        assert done.result == {"served_by": "py-authorized"}
    finally:
        running.stop()


@pytest.mark.parametrize(("token", "refusal"), [(READER, taskd.PermissionDenied), (None, taskd.Unauthenticated)])
def test_a_worker_without_the_worker_scope_is_refused_rather_than_retrying(secured, token, refusal):
    worker = taskd.Worker(secured.address, worker_id="py-unauthorized", token=token)
    worker.handle("py.secured", lambda run: None)
    with pytest.raises(refusal) as refused:
        asyncio.run(asyncio.wait_for(worker.run_async(), WAIT))
    if refusal is taskd.PermissionDenied:
        assert "worker" in refused.value.message


# --- Load shedding ----------------------------------------------------------


@pytest.fixture(scope="module")
def shedding():
    """A taskd whose queue holds two tasks."""
    yield from _serve("--set", "engine.limits.max_queue_depth=2")


def test_a_shed_submit_is_overloaded_with_the_servers_retry_hint(shedding):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with taskd.Client(shedding.address, timeout=WAIT) as client:
        for _ in range(2):
            client.submit("diag.echo", run_at=later)
        with pytest.raises(taskd.Overloaded) as shed:
            client.submit("diag.echo", run_at=later)
        assert shed.value.retry_after == 1.0
        assert "max_queue_depth" in shed.value.message
        with client.submitter() as submitter:
            with pytest.raises(taskd.Overloaded) as shed_in_batch:
                submitter.submit("diag.echo", run_at=later)
        assert shed_in_batch.value.retry_after == 1.0

    async def submit_async():
        async with taskd.AsyncClient(shedding.address, timeout=WAIT) as client:
            await client.submit("diag.echo", run_at=later)

    with pytest.raises(taskd.Overloaded) as shed_async:
        asyncio.run(submit_async())
    assert shed_async.value.retry_after == 1.0


class _Refusal(grpc.RpcError):
    """An RpcError as gRPC raises them, with the trailers chosen here."""

    def __init__(self, trailers):
        self._trailers = trailers

    def code(self):
        return grpc.StatusCode.RESOURCE_EXHAUSTED

    def details(self):
        return "limit"

    def trailing_metadata(self):
        return self._trailers


@pytest.mark.parametrize(
    ("trailers", "kind", "retry_after"),
    [
        ((("grpc-retry-pushback-ms", "250"), ("retry-after", "1")), taskd.Overloaded, 0.25),
        ((("retry-after", "3"),), taskd.Overloaded, 3.0),
        ((), taskd.ResourceExhausted, None),  # a message too large: retrying will not help
    ],
)
def test_the_retry_hint_prefers_milliseconds_and_its_absence_is_no_overload(trailers, kind, retry_after):
    error = taskd.errors.from_rpc_error(_Refusal(trailers))
    assert type(error) is kind
    assert error.retry_after == retry_after


# --- TLS and mutual TLS -----------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=WAIT)


def _signed(name: str, common_name: str, extensions: str, cwd: Path) -> None:
    """`name`.key and `name`.pem, signed by the CA in `cwd`."""
    (cwd / f"{name}.ext").write_text(extensions)
    request = ["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}"]
    _openssl(*request, "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=cwd)
    signing = ["x509", "-req", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-sha256"]
    _openssl(*signing, "-in", f"{name}.csr", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=cwd)


#: Extensions of the leaf certificates (rustls wants v3 certificates with
#: the right key usages; gRPC checks the server's names).
_LEAF = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
_SERVER = _LEAF + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
_CLIENT = _LEAF + "extendedKeyUsage=clientAuth\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a
    client certificate, all made with the openssl CLI."""
    cwd = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-sha256", "-subj", "/CN=taskd pytest CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=cwd,
    )  # fmt: skip
    _signed("server", "localhost", _SERVER, cwd)
    _signed("client", "py-client", _CLIENT, cwd)
    return cwd


def _tls_args(pki: Path) -> list:
    return ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]


@pytest.fixture(scope="module")
def tls(pki):
    """A taskd speaking only TLS, with tokens."""
    yield from _serve(*_tls_args(pki), env={"TASKD_AUTH_TOKENS": TOKENS})


@pytest.fixture(scope="module")
def mtls(pki):
    """A taskd that wants a client certificate signed by the test CA."""
    yield from _serve(*_tls_args(pki), "--tls-client-ca", str(pki / "ca.pem"))


def test_tls_with_the_ca_carries_the_token_on_calls_and_streams(tls, pki):
    address = f"https://localhost:{_port(tls)}"
    with taskd.Client(address, ca_file=pki / "ca.pem", token=SUBMITTER, timeout=WAIT) as ci:
        task = ci.submit("diag.echo", {"over": "tls"})
        assert ci.wait(task.id, timeout=WAIT).result == {"over": "tls"}
        assert repr(ci) == f"Client('localhost:{_port(tls)}', tls=True)"
    with taskd.Client(address, ca_file=pki / "ca.pem", timeout=WAIT) as anonymous:
        with pytest.raises(taskd.Unauthenticated):
            anonymous.stats()

    async def async_stats():
        async with taskd.AsyncClient(address, ca_file=str(pki / "ca.pem"), token=READER, timeout=WAIT) as reader:
            return await reader.stats()

    assert asyncio.run(async_stats()) is not None


def test_a_worker_serves_over_tls(tls, pki):
    address = f"https://localhost:{_port(tls)}"
    worker = taskd.Worker(address, worker_id="py-tls", token=WORKER, ca_file=pki / "ca.pem")
    worker.handle("py.tls", lambda run: {"attempt": run.attempt})
    with taskd.Client(address, ca_file=pki / "ca.pem", token=ADMIN, timeout=WAIT) as admin:
        running = InThread(worker, admin)
        try:
            task = admin.submit("py.tls")
            assert admin.wait(task.id, timeout=WAIT).result == {"attempt": 1}
        finally:
            running.stop()


def test_plaintext_or_an_untrusted_certificate_does_not_reach_a_tls_server(tls):
    with taskd.Client(tls.address, token=ADMIN, timeout=5) as plaintext:
        with pytest.raises(taskd.TaskdError):
            plaintext.stats()
    # The system's roots do not know the test CA.
    with taskd.Client(f"https://localhost:{_port(tls)}", token=ADMIN, timeout=5) as untrusting:
        with pytest.raises(taskd.Unavailable):
            untrusting.stats()


def test_mutual_tls_wants_a_client_certificate(mtls, pki):
    address = f"https://localhost:{_port(mtls)}"
    identity = {"client_cert_file": pki / "client.pem", "client_key_file": pki / "client.key"}
    with taskd.Client(address, ca_file=pki / "ca.pem", timeout=WAIT, **identity) as client:
        task = client.submit("diag.echo", {"over": "mtls"})
        assert client.wait(task.id, timeout=WAIT).result == {"over": "mtls"}
    with taskd.Client(address, ca_file=pki / "ca.pem", timeout=5) as anonymous:
        with pytest.raises(taskd.TaskdError):
            anonymous.stats()


def test_mutual_tls_files_default_from_the_environment(mtls, pki, monkeypatch):
    monkeypatch.setenv("TASKD_CA_FILE", str(pki / "ca.pem"))
    monkeypatch.setenv("TASKD_CLIENT_CERT", str(pki / "client.pem"))
    monkeypatch.setenv("TASKD_CLIENT_KEY", str(pki / "client.key"))
    # No scheme: the TLS files alone mean TLS.
    with taskd.Client(f"localhost:{_port(mtls)}", timeout=WAIT) as client:
        assert client.stats() is not None


def test_contradictory_connection_settings_are_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="https://"):
        taskd.Client("http://127.0.0.1:1", ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match="together"):
        taskd.Client("https://127.0.0.1:1", client_cert_file=tmp_path / "client.pem")
