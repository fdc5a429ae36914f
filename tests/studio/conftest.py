"""The studio's test helpers: a server on a free port in a thread, and requests to it through the standard library."""
import http.client
import json
import socket

import numpy as np
import pytest

from minicnn.studio.api import Studio
from minicnn.studio.server import serve


class Client:
    """Requests to one running studio: ``get`` / ``post`` -> (status, decoded JSON or bytes)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}/"

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, data):
        body = data if isinstance(data, (bytes, str)) else json.dumps(data)
        return self.request("POST", path, body=body, headers={"Content-Type": "application/json"})

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
    """``start_studio(checkpoint, data_root=None, engine="fast")`` -> a Client of a studio serving on a free port; stopped after."""
    servers = []

    def start(checkpoint, data_root=None, engine="fast"):
        studio = Studio(checkpoint, data_root=data_root, engine=engine)
        server, thread = serve(studio, "127.0.0.1", 0)
        servers.append((server, thread))
        client = Client(*server.server_address[:2])
        client.studio = studio
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
    server, thread = serve(studio, "127.0.0.1", 0)
    client = Client(*server.server_address[:2])
    client.studio = studio
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
