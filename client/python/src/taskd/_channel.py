"""Channels to taskd for `Client`, `AsyncClient` and `Worker`: one place
that turns an address and optional credentials into a gRPC channel, sync or
asyncio, so that the three never disagree on what TLS or a token means.

- Plaintext unless the address is `https://...` or TLS files are given.
- A bearer token rides as call credentials on TLS channels. gRPC refuses
  call credentials on plaintext channels (they would leak a secret), but a
  server on loopback without TLS may still want a token: there an
  interceptor adds the `authorization` header to every call, streams
  included.
- Arguments left as None default from the environment: TASKD_TOKEN,
  TASKD_CA_FILE, TASKD_CLIENT_CERT, TASKD_CLIENT_KEY.

The token is kept out of every repr, str and log line.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import grpc
import grpc.aio

PathLike = Union[str, "os.PathLike[str]"]

#: Channel options every client uses: large messages (a page of big tasks)
#: and keepalive pings so that a dead peer is noticed.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]

_PLAINTEXT_SCHEMES = ("http://", "grpc://")
_TLS_SCHEMES = ("https://",)

_ENV_TOKEN = "TASKD_TOKEN"
_ENV_CA_FILE = "TASKD_CA_FILE"
_ENV_CLIENT_CERT = "TASKD_CLIENT_CERT"
_ENV_CLIENT_KEY = "TASKD_CLIENT_KEY"


def split_address(address: str) -> Tuple[str, Optional[bool]]:
    """`host:port` and whether the scheme asked for TLS: True for
    `https://`, False for `http://` (or `grpc://`), None without a scheme
    (then the TLS files decide)."""
    for schemes, tls in ((_TLS_SCHEMES, True), (_PLAINTEXT_SCHEMES, False)):
        for scheme in schemes:
            if address.startswith(scheme):
                return address[len(scheme) :].rstrip("/"), tls
    return address, None


def target_of(address: str) -> str:
    """`host:port` from what users write (`http://host:port`,
    `https://host:port` too)."""
    return split_address(address)[0]


@dataclass(frozen=True)
class ChannelSettings:
    """Where and how to connect, with the files already read. `token` is
    excluded from the repr so that logging a client never logs a secret."""

    target: str
    tls: bool
    token: Optional[str] = field(default=None, repr=False)
    root_certificates: Optional[bytes] = field(default=None, repr=False)
    private_key: Optional[bytes] = field(default=None, repr=False)
    certificate_chain: Optional[bytes] = field(default=None, repr=False)


def _from_env(value: Optional[PathLike], variable: str) -> Optional[PathLike]:
    """The argument, else the environment variable (empty counts as
    unset, so that `VAR=` switches a default off)."""
    if value is not None:
        return value
    return os.environ.get(variable) or None


def _read(path: Optional[PathLike]) -> Optional[bytes]:
    return None if path is None else Path(path).read_bytes()


def resolve(
    address: str,
    *,
    token: Optional[str] = None,
    ca_file: Optional[PathLike] = None,
    client_cert_file: Optional[PathLike] = None,
    client_key_file: Optional[PathLike] = None,
) -> ChannelSettings:
    """The settings of a channel to `address`, arguments first, then the
    environment. An explicit `http://` means plaintext: TLS files from the
    environment are ignored for it, TLS files passed as arguments are a
    contradiction and refused."""
    target, scheme_tls = split_address(address)
    if scheme_tls is False:
        if any(path is not None for path in (ca_file, client_cert_file, client_key_file)):
            raise ValueError(f"{address!r} asks for plaintext, but TLS files were given: use https://")
    else:
        ca_file = _from_env(ca_file, _ENV_CA_FILE)
        client_cert_file = _from_env(client_cert_file, _ENV_CLIENT_CERT)
        client_key_file = _from_env(client_key_file, _ENV_CLIENT_KEY)
    if (client_cert_file is None) != (client_key_file is None):
        raise ValueError("client_cert_file and client_key_file go together (mutual TLS needs both)")
    tls = bool(scheme_tls) or ca_file is not None or client_cert_file is not None
    return ChannelSettings(
        target=target,
        tls=tls,
        token=(token if token is not None else os.environ.get(_ENV_TOKEN)) or None,
        root_certificates=_read(ca_file),
        private_key=_read(client_key_file),
        certificate_chain=_read(client_cert_file),
    )


def _credentials(settings: ChannelSettings) -> grpc.ChannelCredentials:
    """TLS credentials, with the token as call credentials when there is
    one: gRPC then sends it on every call of the channel."""
    ssl = grpc.ssl_channel_credentials(
        root_certificates=settings.root_certificates,
        private_key=settings.private_key,
        certificate_chain=settings.certificate_chain,
    )
    if settings.token is None:
        return ssl
    return grpc.composite_channel_credentials(ssl, grpc.access_token_call_credentials(settings.token))


def _with_header(metadata: Optional[Sequence[Tuple[str, str]]], header: Tuple[str, str]) -> Tuple[Tuple[str, str], ...]:
    return tuple(metadata or ()) + (header,)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """`grpc.ClientCallDetails` is an interface without a constructor: a
    call's details with other metadata need a class of their own."""


class _BearerInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer ...` to every call of a plaintext sync
    channel, whatever its kind (a sync channel asks one interceptor for
    each kind it implements)."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_header(details.metadata, self._header),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class _AsyncBearer:
    """The header for the asyncio interceptors below. An asyncio channel
    files each interceptor under the first kind it implements, so every
    kind needs a class of its own."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            _with_header(details.metadata, self._header),
            details.credentials,
            details.wait_for_ready,
        )


class _AsyncUnaryUnaryBearer(_AsyncBearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _AsyncUnaryStreamBearer(_AsyncBearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _AsyncStreamUnaryBearer(_AsyncBearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


class _AsyncStreamStreamBearer(_AsyncBearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


_ASYNC_BEARERS = (_AsyncUnaryUnaryBearer, _AsyncUnaryStreamBearer, _AsyncStreamUnaryBearer, _AsyncStreamStreamBearer)


def sync_channel(settings: ChannelSettings) -> grpc.Channel:
    """A channel for `Client`: TLS or plaintext, carrying the token."""
    if settings.tls:
        return grpc.secure_channel(settings.target, _credentials(settings), options=CHANNEL_OPTIONS)
    channel = grpc.insecure_channel(settings.target, options=CHANNEL_OPTIONS)
    if settings.token is None:
        return channel
    return grpc.intercept_channel(channel, _BearerInterceptor(settings.token))


def aio_channel(settings: ChannelSettings) -> grpc.aio.Channel:
    """A channel for `AsyncClient` and `Worker`: create it inside the event
    loop that uses it."""
    if settings.tls:
        return grpc.aio.secure_channel(settings.target, _credentials(settings), options=CHANNEL_OPTIONS)
    interceptors = None if settings.token is None else [kind(settings.token) for kind in _ASYNC_BEARERS]
    return grpc.aio.insecure_channel(settings.target, options=CHANNEL_OPTIONS, interceptors=interceptors)
