"""The studio's test helpers: a server on a free port in a thread, and requests to it through the standard library.

Every request carries the server's token (``Authorization: token ...``) unless a test says ``token=False``.
"""
import http.client
import json
import socket

import numpy as np
import pytest

from minicnn.studio.api import Studio
from minicnn.studio.guard import new_token
from minicnn.studio.server import serve


class Client:
    """Requests to one running studio: ``get`` / ``post`` -> (status, decoded JSON or bytes).

    ``url`` is the link the studio prints (with ``?token=``), ``base`` the bare address.
    """

    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token
        self.base = f"http://{host}:{port}/"
        self.url = self.base + (f"?token={token}" if token else "")
        # the headers a raw request needs to get past the guard
        self.auth = f"Host: {host}:{port}\r\nAuthorization: token {token}\r\nContent-Type: application/json\r\n".encode()

    def request(self, method, path, body=None, headers=None, token=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            sent = {"Authorization": f"token {self.token}"} if token and self.token else {}
            conn.request(method, path, body=body, headers={**sent, **(headers or {})})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        self.last_headers = response.headers
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data

    def get(self, path, headers=None, token=True):
        return self.request("GET", path, headers=headers, token=token)

    def post(self, path, data, headers=None, token=True):
        body = data if isinstance(data, (bytes, str)) else json.dumps(data)
        return self.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})},
                            token=token)

    def raw(self, data):
        """Send ``data`` as it is (a whole request, however malformed) and return the status of the answer."""
        with socket.create_connection((self.host, self.port), timeout=30) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):  # the server answered before reading it all
                pass
            reply = b""
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return int(reply.split(b" ", 2)[1])


@pytest.fixture
def start_studio():
    """``start_studio(checkpoint, data_root=None, token=a new one, engine="fast")`` -> a Client of a studio serving on a free port;
    stopped after.  ``client.server`` is the server."""
    servers = []

    def start(checkpoint, data_root=None, token=None, engine="fast", **options):
        studio = Studio(checkpoint, data_root=data_root, engine=engine)
        token = new_token() if token is None else token or None   # token=False: a studio started with --no-token
        server, thread = serve(studio, "127.0.0.1", 0, token=token, **options)
        servers.append((server, thread))
        client = Client(*server.server_address[:2], token)
        client.studio, client.server = studio, server
        return client

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def studio_client(trained_run, mnist_root):
    """One studio on the small trained checkpoint, shared by a module's tests."""
    studio = Studio(trained_run / "checkpoint.npz", data_root=mnist_root)
    token = new_token()
    server, thread = serve(studio, "127.0.0.1", 0, token=token)
    client = Client(*server.server_address[:2], token)
    client.studio, client.server = studio, server
    yield client
    server.shutdown()
    server.server_close()
    thread.join(10)


def png_data_url(image, scale=4):
    """A uint8 (H, W) image, enlarged ``scale`` times, as the data:image/png;base64 URL a canvas gives."""
    import base64
    import io

    from PIL import Image

    big = np.kron(np.asarray(image, dtype=np.uint8), np.ones((scale, scale), dtype=np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def nested_loop_convolution(image, kernel, stride, padding):
    """The textbook definition, one output cell at a time: ``[(row, col, sum)]`` row by row."""
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    H, W = image.shape
    KH, KW = kernel.shape
    padded = np.zeros((H + 2 * padding, W + 2 * padding))
    padded[padding:padding + H, padding:padding + W] = image
    out = []
    for i in range((H + 2 * padding - KH) // stride + 1):
        for j in range((W + 2 * padding - KW) // stride + 1):
            total = 0.0
            for u in range(KH):
                for v in range(KW):
                    total += padded[i * stride + u, j * stride + v] * kernel[u, v]
            out.append((i, j, total))
    return out
