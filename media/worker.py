"""A mediasoup worker process: one C++ `mediasoup-worker`, one CPU core, one Channel.

Events: "died" (the process exited without `close()`; every object on it is
closed first), then "subprocessclose" (the process is gone: after "died", or
once a `close()`d worker's process has exited; `subprocess_closed` says so).
Observer: "close", "newrouter". Calls on a closed worker, and on its objects,
raise `WorkerClosedError` (mediasoup 3.27's).

A worker that leaves requests unanswered for ``request_timeout`` (default
`media.channel.REQUEST_TIMEOUT_S`, 5 s; e.g. it was SIGSTOPped) is stalled:
the pending requests fail with `WorkerTimeout`, the process is SIGKILLed and
the worker "died" as if it had crashed, so routers, vertical routers and
remote clients move on through the one path they already have. Nothing it
was asked to do runs later, since the process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import uuid
from typing import Any

import psutil

from media import cpus, fbs, ortc, wire
from media.channel import REQUEST_TIMEOUT_S, Channel
from media.errors import WorkerClosedError
from media.events import EventEmitter
from media.router import Router
from media.webrtc_server import WebRtcServer
from media.worker_install import worker_bin, worker_version

logger = logging.getLogger("media.worker")

LOG_LEVELS = ("debug", "warn", "error", "none")
LOG_TAGS = (
    "info", "ice", "dtls", "rtp", "srtp", "rtcp", "rtx", "bwe", "score", "simulcast", "svc", "sctp", "message",
)
SPAWN_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
WRONG_SETTINGS_EXIT_CODE = 42

observer = EventEmitter()
"""Module-level observer, as mediasoup's: "newworker" (worker) for every worker created."""


def _validate_settings(
    log_level: str, log_tags: list[str], rtc_min_port: int, rtc_max_port: int, app_data: Any
) -> None:
    if log_level not in LOG_LEVELS:
        raise TypeError(f"invalid log_level {log_level!r} (one of {', '.join(LOG_LEVELS)})")
    if not isinstance(log_tags, list) or any(tag not in LOG_TAGS for tag in log_tags):
        raise TypeError(f"invalid log_tags {log_tags!r} (a list of {', '.join(LOG_TAGS)})")
    for name, port in (("rtc_min_port", rtc_min_port), ("rtc_max_port", rtc_max_port)):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise TypeError(f"invalid {name} {port!r} (an int in 0..65535)")
    if rtc_min_port > rtc_max_port:
        raise TypeError(f"rtc_min_port ({rtc_min_port}) is greater than rtc_max_port ({rtc_max_port})")
    if app_data is not None and not isinstance(app_data, dict):
        raise TypeError("if given, app_data must be a dict")


def _inheritable_high_fd(fd: int) -> int:
    """Move a pipe end above fd 4 so the shell redirections 3<&N 4>&M never clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


async def create_worker(
    *,
    log_level: str = "error",
    log_tags: list[str] | None = None,
    rtc_min_port: int = 10000,
    rtc_max_port: int = 59999,
    dtls_certificate_file: str | None = None,
    dtls_private_key_file: str | None = None,
    libwebrtc_field_trials: str | None = None,
    app_data: dict[str, Any] | None = None,
    request_timeout: float = REQUEST_TIMEOUT_S,
) -> Worker:
    """Spawn a worker process and wait until it reports itself running.

    ``request_timeout`` (not a mediasoup setting): how long the worker may leave requests
    unanswered before it is declared stalled, killed and reported "died".
    """
    log_tags = list(log_tags or [])
    _validate_settings(log_level, log_tags, rtc_min_port, rtc_max_port, app_data)
    args = [f"--logLevel={log_level}", *(f"--logTag={tag}" for tag in log_tags)]
    args += [f"--rtcMinPort={rtc_min_port}", f"--rtcMaxPort={rtc_max_port}"]
    if dtls_certificate_file:
        args.append(f"--dtlsCertificateFile={dtls_certificate_file}")
    if dtls_private_key_file:
        args.append(f"--dtlsPrivateKeyFile={dtls_private_key_file}")
    if libwebrtc_field_trials:
        args.append(f"--libwebrtcFieldTrials={libwebrtc_field_trials}")

    # The worker reads requests on fd 3 and writes on fd 4. subprocess can only
    # pass fds under their own numbers, so bash (dash takes only one-digit fds) renumbers them and execs the
    # worker (same pid); posix_spawn-style dup2 without preexec_fn, thread-safe.
    req_read, req_write = os.pipe()
    resp_read, resp_write = os.pipe()
    child_in, child_out = _inheritable_high_fd(req_read), _inheritable_high_fd(resp_write)
    script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
    env = {**os.environ, "MEDIASOUP_VERSION": worker_version()}
    try:
        process = await asyncio.create_subprocess_exec(
            "/bin/bash", "-c", script, str(worker_bin()), *args,
            pass_fds=(child_in, child_out),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except BaseException:
        for fd in (req_write, resp_read):
            os.close(fd)
        raise
    finally:
        os.close(child_in)
        os.close(child_out)

    cpus.release(process.pid)  # the media runs on every CPU, not on the one the node's threads share
    channel = Channel(read_fd=resp_read, write_fd=req_write, pid=process.pid, request_timeout=request_timeout)
    worker = Worker(process=process, channel=channel, app_data=app_data)
    await worker._start()
    observer.emit("newworker", worker)
    return worker


class _Signals:
    """Signals to the worker process that never reap it, and never reach another process.

    Why not ``asyncio.subprocess.Process.send_signal()``: in CPython 3.11 it goes through
    ``Popen.send_signal()``, which first polls the child (``waitpid(pid, WNOHANG)``). A worker that has
    already exited, e.g. on the SIGTERM sent just before, is reaped there, behind asyncio's child
    watcher: the watcher's own ``waitpid`` then fails, it logs "Unknown child process pid N, will
    report returncode 255" and reports 255 as the exit status (CPython gh-87744; gh-121126 fixed it in
    later versions by signalling with ``os.kill``). A pidfd, opened while asyncio still waits for the child, also closes
    the window that ``os.kill`` leaves (gh-127049): once the child is reaped its pid may be reused,
    but the pidfd still names the exited worker, so the signal fails instead of hitting a stranger."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._fd: int | None = None
        with contextlib.suppress(ProcessLookupError):
            self._fd = os.pidfd_open(process.pid)  # ESRCH: it has already exited (and been reaped)

    def send(self, signum: int) -> None:
        if self._fd is None or self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._fd, signum)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class Worker(EventEmitter):
    def __init__(
        self, *, process: asyncio.subprocess.Process, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self._process = process
        self._signals = _Signals(process)
        self._channel = channel
        self._closed = False
        self._died = False
        self._subprocess_closed = False
        self._routers: set[Router] = set()
        self._webrtc_servers: set[WebRtcServer] = set()
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stalled: str | None = None
        channel.on_stall = self._on_stall

    async def _start(self) -> None:
        running = asyncio.get_running_loop().create_future()

        def on_worker_notification(event: int, _body: Any) -> None:
            if event == fbs.enum("Notification.Event").WORKER_RUNNING and not running.done():
                running.set_result(None)

        self._channel.subscribe(str(self.pid), on_worker_notification)
        await self._channel.start()
        self._tasks.add(asyncio.create_task(self._log_stderr(), name=f"worker-stderr[{self.pid}]"))
        exited = asyncio.create_task(self._process.wait(), name=f"worker-wait[{self.pid}]")
        done, _ = await asyncio.wait({running, exited}, timeout=SPAWN_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            self._channel.unsubscribe(str(self.pid))
            exited.add_done_callback(lambda _t: self._on_exit())
            self._tasks.add(exited)
            return
        running.cancel()
        code = self._process.returncode
        await self._shutdown()
        exited.cancel()
        if code == WRONG_SETTINGS_EXIT_CODE:
            raise TypeError("worker refused its settings (wrong settings)")
        raise RuntimeError(f"worker process failed to start [pid:{self.pid}, exit code:{code}]")

    async def _log_stderr(self) -> None:
        assert self._process.stderr is not None
        async for line in self._process.stderr:
            logger.error("worker[pid:%s] (stderr) %s", self.pid, line.decode(errors="replace").rstrip())

    def _on_stall(self, why: str) -> None:
        if self._closed:
            return
        self._stalled = why
        logger.error("worker [pid:%s] stalled (%s): killing it", self.pid, why)
        self._signals.send(signal.SIGKILL)  # a stopped process dies too; its exit then reports "died"

    def _on_exit(self) -> None:
        self._signals.close()
        if self._closed:
            self._emit_subprocess_closed()
            return
        code = self._process.returncode
        logger.error("worker process died unexpectedly [pid:%s, code:%s]", self.pid, code)
        self._died = True
        self._tasks.add(asyncio.create_task(self._die(code), name=f"worker-died[{self.pid}]"))

    async def _die(self, code: int | None) -> None:
        self._closed = True
        await self._channel.close()
        self._close_children()
        if self._stalled is not None:
            error = RuntimeError(f"worker stalled and was killed [pid:{self.pid}]: {self._stalled}")
        else:
            error = RuntimeError(f"worker died [pid:{self.pid}, code:{code}]")
        self.emit("died", error)
        self._emit_subprocess_closed()
        self.observer.emit("close")

    def _emit_subprocess_closed(self) -> None:
        if not self._subprocess_closed:
            self._subprocess_closed = True
            self.emit("subprocessclose")

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def died(self) -> bool:
        return self._died

    @property
    def subprocess_closed(self) -> bool:
        """Whether the worker process has exited (and "subprocessclose" was emitted)."""
        return self._subprocess_closed

    @property
    def routers(self) -> frozenset[Router]:
        return frozenset(self._routers)

    @property
    def channel(self) -> Channel:
        return self._channel

    def _check_open(self) -> None:
        if self._closed:
            raise WorkerClosedError("Worker closed")

    async def close(self) -> None:
        """Stop the process; every router (and what it holds) is closed with its events, then
        "subprocessclose" (the process has exited when this returns), then observer "close"."""
        if self._closed:
            return
        self._closed = True
        await self._shutdown()
        self._close_children()
        self._emit_subprocess_closed()
        self.observer.emit("close")

    def _close_children(self) -> None:
        for router in list(self._routers):
            router.worker_closed()
        self._routers.clear()
        for webrtc_server in list(self._webrtc_servers):
            webrtc_server.worker_closed()
        self._webrtc_servers.clear()

    async def _shutdown(self) -> None:
        self._signals.send(signal.SIGTERM)
        # A stopped (SIGSTOPped) worker would hold SIGTERM until STOP_TIMEOUT_S: let it run
        # to handle it. Harmless for a running one.
        self._signals.send(signal.SIGCONT)
        try:
            await asyncio.wait_for(asyncio.shield(self._process.wait()), STOP_TIMEOUT_S)
        except TimeoutError:
            self._signals.send(signal.SIGKILL)
            await self._process.wait()
        self._signals.close()
        await self._channel.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        response = await self._channel.request("WORKER_DUMP")
        return fbs.to_plain(response)

    async def get_resource_usage(self) -> dict[str, int]:
        """getrusage() of the worker process, with mediasoup's ru_* keys."""
        self._check_open()
        usage = fbs.to_plain(await self._channel.request("WORKER_GET_RESOURCE_USAGE"))
        return {"ru_" + key[2:].lower(): int(value) for key, value in usage.items()}

    def cpu_percent(self, interval: float | None = None) -> float:
        """CPU use of the worker process since the previous call (psutil semantics)."""
        self._check_open()
        return float(psutil.Process(self.pid).cpu_percent(interval))

    async def update_settings(self, *, log_level: str | None = None, log_tags: list[str] | None = None) -> None:
        self._check_open()
        if log_level is not None and log_level not in LOG_LEVELS:
            raise TypeError(f"invalid log_level {log_level!r}")
        if log_tags is not None and any(tag not in LOG_TAGS for tag in log_tags):
            raise TypeError(f"invalid log_tags {log_tags!r}")
        body = fbs.new("Worker.UpdateSettingsRequest", logLevel=log_level, logTags=log_tags)
        await self._channel.request("WORKER_UPDATE_SETTINGS", "Worker_UpdateSettingsRequest", body)

    @property
    def webrtc_servers(self) -> frozenset[WebRtcServer]:
        return frozenset(self._webrtc_servers)

    async def create_webrtc_server(
        self, *, listen_infos: list[dict[str, Any]], app_data: dict[str, Any] | None = None
    ) -> WebRtcServer:
        self._check_open()
        if not isinstance(listen_infos, list) or not listen_infos:
            raise TypeError("listen_infos must be a non-empty list of {protocol, ip, port?}")
        for info in listen_infos:
            if not isinstance(info, dict) or not isinstance(info.get("ip"), str):
                raise TypeError(f"invalid listen info {info!r}: needs at least an 'ip' string")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        webrtc_server_id = str(uuid.uuid4())
        body = fbs.new(
            "Worker.CreateWebRtcServerRequest",
            webRtcServerId=webrtc_server_id,
            listenInfos=[wire.listen_info_to_fbs(info) for info in listen_infos],
        )
        await self._channel.request("WORKER_CREATE_WEBRTCSERVER", "Worker_CreateWebRtcServerRequest", body)
        server = WebRtcServer(webrtc_server_id=webrtc_server_id, channel=self._channel, app_data=app_data)
        self._webrtc_servers.add(server)
        server.on("@close", lambda: self._webrtc_servers.discard(server))
        self.observer.emit("newwebrtcserver", server)
        return server

    async def create_router(
        self, *, media_codecs: list[dict[str, Any]] | None = None, app_data: dict[str, Any] | None = None
    ) -> Router:
        self._check_open()
        if media_codecs is not None and not isinstance(media_codecs, list):
            raise TypeError("if given, media_codecs must be a list")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        rtp_capabilities = ortc.generate_router_rtp_capabilities(media_codecs or [])
        router_id = str(uuid.uuid4())
        body = fbs.new("Worker.CreateRouterRequest", routerId=router_id)
        await self._channel.request("WORKER_CREATE_ROUTER", "Worker_CreateRouterRequest", body)
        router = Router(
            router_id=router_id, rtp_capabilities=rtp_capabilities, channel=self._channel, app_data=app_data,
            worker=self,
        )
        self._routers.add(router)
        router.on("@close", lambda: self._routers.discard(router))
        self.observer.emit("newrouter", router)
        return router
