"""``python -m minicnn studio [CHECKPOINT]``: serve the studio's page on this machine and open it in the browser.

The page (minicnn/studio/static/) only draws; every number on it comes from
the JSON endpoints of ``minicnn.studio.api``.  Served by the standard
library's ``http.server``, one thread per request; Ctrl-C stops it.

Safe by default: it listens on 127.0.0.1 only (``--host 0.0.0.0`` lets anyone
on the network use it, and says so); the checkpoint is fixed when it starts
and no request names a file; static files come only from the package's own
folder, by exact name; a request body above 1 MB is refused (413), bad JSON
or numbers are refused with a message (400); each error is one line in the
terminal, never a traceback.
"""
import argparse
import json
import os
import re
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
from minicnn.studio.api import ApiError, Studio, default_checkpoint
from minicnn.utils.cli import command

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 1024 * 1024            # bytes of a request body
DRAIN_LIMIT = 4 * MAX_BODY        # after a 413, a body up to this size is read and dropped, for DRAIN_SECONDS at most
DRAIN_SECONDS = 2.0
REQUEST_TIMEOUT = 10.0            # seconds a client may take to send its request
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
_NAME = re.compile(r"^/(?:static/)?([A-Za-z0-9_-]+\.(?:html|css|js|png|svg))$")


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
        return ('BLAS runs on all cores; with threadpoolctl (pip install "minicnn[studio]") or OPENBLAS_NUM_THREADS=1 '
                "training in the page is faster on a busy machine")
    threadpool_limits(1, user_api="blas")
    return "BLAS on one thread (set OPENBLAS_NUM_THREADS to choose)"


def static_files(folder=STATIC):
    """``{name: bytes}`` of every file the page is made of, read once at start (nothing else is ever served)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in TYPES}


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows; send finite numbers")


class Handler(BaseHTTPRequestHandler):
    """GET / and the static files; GET/POST /api/... to the studio's endpoints.  ``server.studio`` answers."""

    server_version = "minicnn-studio"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------ replies

    def _send(self, status, body, content_type, close=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, data, close=False):
        self._send(status, json.dumps(data, allow_nan=False).encode(), "application/json", close)

    def _error(self, status, message, close=False):
        path = str(getattr(self, "path", "") or "")[:200].encode("unicode_escape").decode()
        self.log_message("%s %s -> %d %s", self.command or "-", path, status, message[:300])
        self._json(status, {"error": message, "status": status}, close)

    def log_message(self, format, *args):
        """One line on stderr, for errors only (successful requests are quiet)."""
        sys.stderr.write(f"studio: {format % args}\n")

    def log_request(self, code="-", size="-"):
        pass

    def log_error(self, format, *args):
        if not format.startswith("Request timed out"):  # an idle kept-alive connection closing is no error
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

    def _dispatch(self, method):
        try:
            self._answer(method)
        except ApiError as e:
            self._error(e.status, str(e), close=method == "POST")  # the body may be unread: start afresh
            self._discard_body()
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug of ours: one line, not a traceback, and the server goes on
            self._error(500, f"internal error ({type(e).__name__}: {e})")

    def _answer(self, method):
        raw = self.path
        path = urlsplit(raw).path if raw.startswith("/") else ""
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
            result = endpoint(body)
            result = {**result, "server_seconds": round(time.perf_counter() - started, 4)}
            self._json(200, result)
            return
        if method != "GET":
            raise ApiError(f"{path} does not answer {method}", 405)
        name = "index.html" if path == "/" else (_NAME.match(path).group(1) if _NAME.match(path) else None)
        files = self.server.static
        if name not in files:
            raise ApiError("not found", 404)
        self._send(200, files[name], TYPES[Path(name).suffix])

    def _discard_body(self):
        """After a 413: read and drop what the client still sends (at most DRAIN_LIMIT bytes, DRAIN_SECONDS long).

        Closing a socket with unread data makes the system reset the connection,
        and the client would see that instead of the answer.
        """
        n, self._unread = getattr(self, "_unread", 0), 0
        if not 0 < n <= DRAIN_LIMIT:
            return
        self.connection.settimeout(DRAIN_SECONDS)
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            while n > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)
        except (OSError, ValueError):
            pass

    def _read_json(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError("send the body with a Content-Length, not chunked", 411)
        length = self.headers.get("Content-Length")
        if length is None:
            raise ApiError("a POST needs a Content-Length and a JSON body", 411)
        if not length.strip().isdigit():
            raise ApiError(f"Content-Length must be a whole number, got {length[:40]!r}")
        n = int(length)
        if n > MAX_BODY:
            self._unread = n
            raise ApiError(f"the request body is {int(length)} bytes; at most {MAX_BODY} are accepted", 413)
        data = self.rfile.read(n)
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
    """A ThreadingHTTPServer that holds the studio and the page's files; request threads never block exit."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, studio):
        self.studio = studio
        self.static = static_files()
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        """A failure outside a handler's own checks (a client gone mid-request): one line, no traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):  # a client that went away or went quiet: no error of ours
            return
        sys.stderr.write(f"studio: request from {client_address[0]} failed: {type(err).__name__}: {err}\n")


def serve(studio, host="127.0.0.1", port=8000):
    """A running server in a background thread: returns (server, thread); ``server.shutdown()`` stops it."""
    server = StudioServer((host, port), studio)
    thread = threading.Thread(target=server.serve_forever, name="minicnn-studio", daemon=True)
    thread.start()
    return server, thread


@command("studio")
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn studio", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="a checkpoint written by experiments/train_mnist.py, or its folder "
                        "(default: runs/mnist/checkpoint.npz when it exists)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the MNIST folder for 'Learn it yourself' on MNIST (default: datasets/mnist)")
    p.add_argument("--engine", choices=BUILT_IN, default="fast",
                   help="the code that computes every answer: loops, textbook (minicnn/nn/textbook.py) or fast "
                        "(default: fast); each answer says which")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be from 0 to 65535, got {args.port}")
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
    server = StudioServer((args.host, args.port), studio)
    host, port = server.server_address[:2]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    print(f"studio: serving {url} (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstudio: stopped")
    finally:
        server.server_close()
    return 0
