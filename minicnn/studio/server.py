"""``python -m minicnn studio [CHECKPOINT]``: serve the studio's page on this machine and open it in the browser.

The page (minicnn/studio/static/) only draws; every number on it comes from
the JSON endpoints of ``minicnn.studio.api``.  Served by the standard
library's ``http.server``, one thread per connection; Ctrl-C or SIGTERM stops
it ("stopped", exit status 0, its port free again).

Safe by default, so that it can be left open in a browser that also visits
other sites:

- Only the page it served, in this machine's browser, can use it (the rules
  are in ``minicnn.studio.guard``): it listens on 127.0.0.1; it answers only
  requests addressed to 127.0.0.1, localhost or [::1] with its port
  (``--allow-host NAME`` adds a name, for ``--host 0.0.0.0``), on every path;
  every /api/ request carries the token made at each start, from the printed
  link ``http://127.0.0.1:PORT/?token=TOKEN`` or from the cookie its first
  visit set; a request from another origin or site is refused, and a POST
  must be JSON.  ``--no-token`` drops the token (with a warning).
- No client can take the machine: a request has 10 s in all to arrive
  (request line, headers and body, however slowly it is sent); at most 64
  connections are open at once and the rest are refused; at most 2 heavy
  requests (drawings, training) run at once, the others wait up to 5 s and
  then get 503 with ``Retry-After``; a body above 1 MB is refused (413); a
  drawing's size is read from its PNG header and checked before it is decoded.
- Nothing to read or run: the checkpoint is fixed when it starts and no
  request names a file; static files come only from the package's own
  folder, by exact name; ``/api/info`` names the checkpoint's file, not where
  it lives; training sessions have random ids.
- Bad input gets a status and a message (400, 403, 404, 405, 411, 413, 415),
  never a 500; each error is one line in the terminal, never a traceback, with
  every control character a client sent escaped.
"""
import argparse
import io
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from minicnn.nn.ops import BUILT_IN
from minicnn.studio.api import HEAVY, ApiError, Studio, default_checkpoint
from minicnn.studio.guard import LOCAL_NAMES, Guard, host_name, new_token, printable
from minicnn.utils.cli import command

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 1024 * 1024            # bytes of a request body
DRAIN_LIMIT = 4 * MAX_BODY        # after a refusal, a body up to this size is read and dropped, for DRAIN_SECONDS at most
DRAIN_SECONDS = 2.0
REQUEST_SECONDS = 10.0            # a client's time for a whole request: request line, headers and body
SEND_SECONDS = 10.0               # a client's time to take an answer
MAX_CONNECTIONS = 64              # open at once; the next ones are refused
HEAVY_AT_ONCE = 2                 # heavy requests (api.HEAVY) computing at once
HEAVY_WAIT = 5.0                  # seconds a heavy request waits for its turn before a 503
RETRY_AFTER = 2                   # seconds, said with a 503
STOP_SECONDS = 5.0                # on stop, how long the open connections' threads get to end
WILDCARDS = ("", "0.0.0.0", "::")
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
_NAME = re.compile(r"^/(?:static/)?([A-Za-z0-9_-]+\.(?:html|css|js|png|svg))$")
_LENGTH = re.compile(r"^[0-9]{1,15}$")   # ASCII digits only: int() would also take "\u00b2" or "1_0"
_FULL = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + str(RETRY_AFTER).encode()
         + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread():
    """Run BLAS on one thread unless the user chose (an environment variable); returns a line saying so.

    The studio's products are small: on a machine whose cores are busy, several BLAS
    threads wait on each other and a training step of the MNIST task took 20x longer
    (370 ms instead of 16 ms, measured on 2 cores).  Needs threadpoolctl (the ``studio`` extra).
    """
    chosen = [v for v in BLAS_THREAD_VARIABLES if os.environ.get(v)]
    if chosen:
        return f"BLAS threads as {chosen[0]}={os.environ[chosen[0]]} says"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return ('BLAS runs on all cores; with threadpoolctl (pip install "minicnn-numpy[studio]") or OPENBLAS_NUM_THREADS=1 '
                "training in the page is faster on a busy machine")
    threadpool_limits(1, user_api="blas")
    return "BLAS on one thread (set OPENBLAS_NUM_THREADS to choose)"


def static_files(folder=STATIC):
    """``{name: bytes}`` of every file the page is made of, read once at start (nothing else is ever served)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in TYPES}


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows; send finite numbers")


class Busy(ApiError):
    """503: the heavy requests' turns are all taken; ``headers`` says when to try again."""

    def __init__(self):
        super().__init__(f"the studio is busy with other drawings or training ({HEAVY_AT_ONCE} at once); "
                         f"try again in a moment", 503)
        self.headers = {"Retry-After": str(RETRY_AFTER)}


class _RequestClock(io.RawIOBase):
    """A socket's reading side with one deadline for a whole request, however slowly its bytes come.

    A socket's own timeout counts from each read: a client sending a byte every
    few seconds would hold a thread for ever.  Each read here waits only for
    what is left of the deadline (``start`` sets it), then raises TimeoutError.
    """

    def __init__(self, sock):
        self.sock, self.deadline = sock, math.inf

    def start(self, seconds):
        self.deadline = time.monotonic() + seconds

    def readable(self):
        return True

    def readinto(self, buffer):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took longer than its deadline to arrive")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class Handler(BaseHTTPRequestHandler):
    """GET / and the static files; GET/POST /api/... to the studio's endpoints.  ``server.studio`` answers,
    once ``server.guard`` let the request through."""

    server_version = "minicnn-studio"
    sys_version = ""
    timeout = REQUEST_SECONDS
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self._clock = _RequestClock(self.connection)
        self.rfile = io.BufferedReader(self._clock)

    def handle_one_request(self):
        self._clock.start(REQUEST_SECONDS)
        self._body_read = False
        super().handle_one_request()

    # ------------------------------------------------------------ replies

    def _send(self, status, body, content_type, close=False, headers=None):
        self.connection.settimeout(SEND_SECONDS)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.send_header("Referrer-Policy", "no-referrer")   # the page's address holds the token
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, data, close=False, headers=None):
        self._send(status, json.dumps(data, allow_nan=False).encode(), "application/json", close, headers)

    def _error(self, status, message, close=False, headers=None):
        self.log_message("%s %s -> %d %s", self.command or "-", str(getattr(self, "path", "") or "")[:200],
                         status, message)
        self._json(status, {"error": message, "status": status}, close, headers)

    def log_message(self, format, *args):
        """One line on stderr, for errors only (successful requests are quiet); what a client sent, escaped."""
        sys.stderr.write(f"studio: {printable(format % args, 600)}\n")

    def log_request(self, code="-", size="-"):
        pass

    def log_error(self, format, *args):
        if not format.startswith("Request timed out"):  # a client that went quiet, or too slow: closed, no error of ours
            self.log_message(format, *args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (a malformed request line, too long headers) as one JSON line too."""
        if self.request_version == "HTTP/0.9":  # not understood: answer with a status line all the same
            self.request_version = "HTTP/1.0"
        self._error(int(code), message or HTTPStatus(code).phrase, close=True)

    # ------------------------------------------------------------ requests

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_OPTIONS(self):
        """No preflight is answered: the page never needs one, and another origin may not use the studio."""
        self._error(405, "the studio answers no OPTIONS (no cross-origin request is allowed)", close=True,
                    headers={"Allow": "GET, HEAD, POST"})

    def _dispatch(self, method):
        try:
            self._answer(method)
        except ApiError as e:
            unread = method == "POST" and not self._body_read  # the body may be unread: start afresh
            self._error(e.status, str(e), close=unread, headers=getattr(e, "headers", None))
            if unread:
                self._discard_body()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # a bug of ours: one line, not a traceback, and the server goes on
            self._error(500, f"internal error ({type(e).__name__}: {e})", close=True)

    def _answer(self, method):
        raw = self.path
        target = urlsplit(raw) if raw.startswith("/") else None
        path = target.path if target is not None else ""
        lengths = self._content_length()
        self.server.guard.check(method, path, self.headers)
        self._check_framing(method, lengths)
        if (not path or ".." in path or "\\" in path or "%" in path or "\x00" in path or "//" in path
                or any(ord(ch) < 32 or ord(ch) > 126 for ch in raw)):
            raise ApiError("not found", 404)
        if path.startswith("/api/"):
            endpoint = self.server.studio.routes.get((method, path))
            if endpoint is None:
                if any(p == path for _, p in self.server.studio.routes):
                    raise ApiError(f"{path} does not answer {method}", 405)
                raise ApiError(f"no endpoint {path}", 404)
            body = self._read_json() if method == "POST" else None
            started = time.perf_counter()
            result = self._run(path, endpoint, body)
            result = {**result, "server_seconds": round(time.perf_counter() - started, 4)}
            self._json(200, result)
            return
        if method != "GET":
            raise ApiError(f"{path} does not answer {method}", 405)
        name = "index.html" if path == "/" else (_NAME.match(path).group(1) if _NAME.match(path) else None)
        files = self.server.static
        if name not in files:
            raise ApiError("not found", 404)
        cookie = self.server.guard.set_cookie(target.query) if path == "/" else None
        self._send(200, files[name], TYPES[Path(name).suffix], headers={"Set-Cookie": cookie} if cookie else None)

    def _run(self, path, endpoint, body):
        """``endpoint(body)``; a heavy one waits for one of the HEAVY_AT_ONCE turns, HEAVY_WAIT seconds at most."""
        if path not in HEAVY:
            return endpoint(body)
        if not self.server.heavy.acquire(timeout=HEAVY_WAIT):
            raise Busy()
        try:
            return endpoint(body)
        finally:
            self.server.heavy.release()

    def _content_length(self):
        """The Content-Length headers, checked first: at most one, in ASCII digits (else 400)."""
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            raise ApiError("send one Content-Length header, not several")
        if lengths and not _LENGTH.match(lengths[0].strip(" \t")):
            raise ApiError(f"Content-Length must be a whole number in ASCII digits, got {printable(lengths[0], 40)!r}")
        return lengths

    def _check_framing(self, method, lengths):
        """A POST has a Content-Length (else 411), a GET no body at all (else 400)."""
        chunked = self.headers.get_all("Transfer-Encoding")
        if method != "POST":
            if chunked or (lengths and int(lengths[0]) > 0):
                self.close_connection = True
                raise ApiError(f"a {method} request has no body")
            return
        if chunked:
            raise ApiError("send the body with a Content-Length, not chunked", 411)
        if not lengths:
            raise ApiError("a POST needs a Content-Length and a JSON body", 411)

    def _discard_body(self):
        """After a refused POST: read and drop what the client still sends (at most DRAIN_LIMIT bytes, DRAIN_SECONDS long).

        Closing a socket with unread data makes the system reset the connection,
        and the client would see that instead of the answer.
        """
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) != 1 or not _LENGTH.match(lengths[0].strip(" \t")):
            return
        n = int(lengths[0])
        if not 0 < n <= DRAIN_LIMIT:
            return
        self._clock.start(DRAIN_SECONDS)
        try:
            while n > 0:
                chunk = self.rfile.read1(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)
        except (OSError, ValueError):
            pass

    def _read_json(self):
        n = int(self.headers["Content-Length"])
        if n > MAX_BODY:
            raise ApiError(f"the request body is {n} bytes; at most {MAX_BODY} are accepted", 413)
        data = self.rfile.read(n)
        self._body_read = True
        if len(data) < n:
            self.close_connection = True
            raise ApiError(f"the body ended after {len(data)} of {n} bytes")
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise ApiError("the body must be UTF-8 JSON") from None
        except ValueError as e:
            raise ApiError(f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError("the body's JSON is nested too deeply") from None


class StudioServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that holds the studio, the page's files and the guard; at most MAX_CONNECTIONS open.

    Parameters
    ----------
    address : (host, port); port 0 picks a free one
    studio : the ``Studio`` that answers
    token : the start's secret (``guard.new_token()``), or None for none (``--no-token``)
    allow_hosts : more names requests may be addressed to (the address listened on is added when it is one)
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = MAX_CONNECTIONS

    def __init__(self, address, studio, token, allow_hosts=()):
        self.studio = studio
        self.static = static_files()
        self.heavy = threading.BoundedSemaphore(HEAVY_AT_ONCE)
        self._open, self._open_lock = {}, threading.Lock()   # connection -> the thread answering it
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        names = list(allow_hosts) + ([address[0]] if address[0] not in WILDCARDS else [])
        self.guard = Guard(self.server_address[1], token, names)

    def process_request(self, request, client_address):
        """A thread for the connection, or, with MAX_CONNECTIONS already open, a 503 at once and the door closed."""
        with self._open_lock:
            full = len(self._open) >= MAX_CONNECTIONS
            if not full:
                thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                          name="minicnn-studio-request", daemon=True)
                self._open[request] = thread
        if full:
            try:
                request.setblocking(False)
                request.send(_FULL)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        thread.start()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)

    def server_close(self):
        """Stop listening, end every open connection and wait (STOP_SECONDS at most) for their threads."""
        super().server_close()
        with self._open_lock:
            still_open = dict(self._open)
        for connection in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        for thread in still_open.values():
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request, client_address):
        """A failure outside a handler's own checks (a client gone mid-request): one line, no traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):  # a client that went away or went quiet: no error of ours
            return
        sys.stderr.write(f"studio: {printable(f'request from {client_address[0]} failed: {type(err).__name__}: {err}')}\n")


def serve(studio, host="127.0.0.1", port=8000, *, token, allow_hosts=()):
    """A running server in a background thread: returns (server, thread); ``server.shutdown()`` stops it.

    ``token`` is the secret every /api/ request must carry (``guard.new_token()``), or None for none.
    """
    server = StudioServer((host, port), studio, token, allow_hosts)
    thread = threading.Thread(target=server.serve_forever, name="minicnn-studio", daemon=True)
    thread.start()
    return server, thread


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the studio as Ctrl-C does


@command("studio")
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn studio", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="a checkpoint written by 'minicnn train', or its folder "
                        "(default: runs/mnist/checkpoint.npz when it exists)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests addressed to NAME, this machine's name or address on the network "
                        "(with --host 0.0.0.0); repeat it for more (default: only 127.0.0.1, localhost and [::1])")
    p.add_argument("--no-token", action="store_true",
                   help="let the page work without the token made at each start (a classroom machine); "
                        "any page in a browser that can reach the studio can then use it")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the MNIST folder for 'Learn it yourself' on MNIST (default: mnist in the data folder, which "
                        "'minicnn fetch --where' prints)")
    p.add_argument("--engine", choices=BUILT_IN, default="fast",
                   help="the code that computes every answer: loops, textbook (minicnn/nn/textbook.py) or fast "
                        "(default: fast); each answer says which")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be from 0 to 65535, got {args.port}")
    allow_hosts = [host_name(name) for name in args.allow_host]
    checkpoint = args.checkpoint if args.checkpoint is not None else default_checkpoint()
    studio = Studio(checkpoint, data_root=args.data, engine=args.engine)
    print(f"studio: {one_blas_thread()}; engine {args.engine}")
    if studio.run is None:
        print(f"studio: {studio.info()['hint']}")
    else:
        print(f"studio: showing {studio.run.path}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"studio: WARNING: listening on {args.host}: anyone who can reach this machine on the network can "
              f"use the studio (and make it train); stop it with Ctrl-C", file=sys.stderr)
    server = StudioServer((args.host, args.port), studio, None if args.no_token else new_token(), allow_hosts)
    guard = server.guard
    if args.no_token:
        print("studio: WARNING: --no-token: no token is asked for; any page in a browser that reaches the studio "
              "by one of its names can use it", file=sys.stderr)
    extra = [name for name in guard.names if name not in LOCAL_NAMES]
    if extra:
        print(f"studio: answering requests addressed to {', '.join(LOCAL_NAMES + tuple(extra))} on port {guard.port}")
    elif args.host in WILDCARDS:
        print("studio: answering only requests addressed to 127.0.0.1, localhost or [::1]; "
              "add this machine's name on the network with --allow-host NAME")
    url = guard.url("127.0.0.1" if args.host in WILDCARDS else host_name(args.host))
    print(f"studio: serving {url} (Ctrl-C stops it)", flush=True)
    for name in extra:
        print(f"studio: on the network: {guard.url(name)}", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if in_main_thread else None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstudio: stopped", flush=True)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM while closing changes nothing
        server.server_close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
