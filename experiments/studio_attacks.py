"""Replay issue 23's attacks on a running ``python -m minicnn studio`` and print what each one got, as a table.

Starts the studio in a child process (port 0, a checkpoint of random weights in a
temporary folder), sends every request from this machine as an attacker would (raw
sockets, foreign headers, trickled bytes, many sockets), measures the child's memory
(VmRSS from /proc, Linux only) under 20 concurrent 4096x4096 PNG drawings, and stops
it with SIGTERM.  The two rows that need a browser (a page on another port, DNS
rebinding) are tests/studio/test_browser.py's; their HTTP side is replayed here.

    python experiments/studio_attacks.py [--trickle-seconds 24] [--json results.json]
"""
import argparse
import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
POSTS = {"/api/convolve": {"image": [[1, 2], [3, 4]], "kernel": [[1]], "stride": 1, "padding": 0},
         "/api/kernel": {"layer": 0, "filter": 0}, "/api/predict": {"png": ""}, "/api/crop": {"png": ""},
         "/api/train/new": {"task": "sobel", "seed": 0, "lr": 0.1}, "/api/train/step": {"session": "1", "steps": 1}}
GETS = ("/", "/static/studio.js", "/api/info", "/api/kernels", "/api/curves")


def rss_mb(pid, field="VmRSS"):
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024


def ask(port, method, path, body=b"", headers=(), timeout=60):
    """One raw HTTP/1.1 request -> (status, headers text, body bytes); status 0 when the connection was closed."""
    head = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(h + b"\r\n" for h in headers)
    if method == "POST" and not any(h.lower().startswith(b"content-length") for h in headers):
        head += f"Content-Length: {len(body)}\r\n".encode()
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + b"Connection: close\r\n\r\n" + body)
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    if not reply.startswith(b"HTTP/1."):
        return 0, "", reply
    top, _, rest = reply.partition(b"\r\n\r\n")
    return int(top.split(b" ", 2)[1]), top.decode("latin-1"), rest


def png_url(side):
    """A PNG of side x side: black, with a white stroke across (a drawing the network will read)."""
    from PIL import Image, ImageDraw

    picture = Image.new("L", (side, side))
    ImageDraw.Draw(picture).line([(side // 2, side // 5), (side // 2, 4 * side // 5)], fill=255, width=max(1, side // 20))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def start(folder):
    from minicnn.training import architectures
    from minicnn.training.checkpoint import save_checkpoint

    model = architectures.build_model(architectures.mnist_cnn(channels=(8, 16), hidden=64), rng=np.random.default_rng(0))
    save_checkpoint(folder / "checkpoint.npz", model=model)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "minicnn", "studio", str(folder / "checkpoint.npz"), "--port", "0",
                             "--no-browser"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    for line in proc.stdout:
        if "serving" in line:
            url = line.split("serving ", 1)[1].split()[0]
            break
    else:
        raise RuntimeError(f"the studio did not start: {proc.stderr.read()}")
    port = int(re.search(r":(\d+)/", url).group(1))
    token = url.split("token=", 1)[1] if "token=" in url else ""
    return proc, port, token


def trickle(port, sockets, seconds, auth):
    """``sockets`` connections each sending a request one byte every 2 s; how many are still open after ``seconds``."""
    request = b"POST /api/convolve HTTP/1.1\r\n" + b"".join(h + b"\r\n" for h in auth) + b"Content-Length: 100\r\n\r\n" + b" " * 100
    conns = []
    for _ in range(sockets):
        try:
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    open_ = set(range(len(conns)))
    start = time.monotonic()
    closed_at = []
    for i in range(len(request)):
        for k in list(open_):
            try:
                conns[k].sendall(request[i:i + 1])
                conns[k].setblocking(False)
                conns[k].recv(4096)   # an answer (503: too many connections, 408) or the end: either way, closed
                raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(k)
                closed_at.append(time.monotonic() - start)
            finally:
                conns[k].setblocking(True)
        if time.monotonic() - start >= seconds or not open_:
            break
        time.sleep(2)
    for c in conns:
        c.close()
    return len(conns), len(open_), max(closed_at) if closed_at else None, sum(t < 1 for t in closed_at)


def memory_row(pid, port, auth, side, concurrent):
    """``concurrent`` drawings of side x side at once, half to predict, half to crop: the answers and the RSS."""
    url = png_url(side)
    body = json.dumps({"png": url}).encode()
    before = rss_mb(pid)
    peak, stop = [before], threading.Event()

    def sample():
        while not stop.is_set():
            peak.append(rss_mb(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    answers = [None] * concurrent
    started = time.perf_counter()

    def send(k):
        answers[k] = ask(port, "POST", "/api/predict" if k % 2 == 0 else "/api/crop", body, auth)[0]

    senders = [threading.Thread(target=send, args=(k,)) for k in range(concurrent)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    stop.set()
    sampler.join()
    after = rss_mb(pid)
    return (f"{concurrent} concurrent {side}x{side} PNGs ({len(url) // 1024} KB each, with the token) to predict and crop",
            f"{_counts(answers)} in {seconds:.2f} s; RSS {before:.0f} MB before, peak {max(peak):.0f} MB, "
            f"{after:.0f} MB 1 s after")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trickle-seconds", type=float, default=24.0, help="how long the trickling clients go on (default: 24)")
    p.add_argument("--concurrent", type=int, default=20, help="4096x4096 drawings sent at once (default: 20)")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="studio-attacks-") as tmp:
        proc, port, token = start(Path(tmp))
        err_lines = []
        threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
        own = f"Host: 127.0.0.1:{port}".encode()
        auth = [own, f"Authorization: token {token}".encode(), b"Content-Type: application/json"]
        try:
            foreign = [b"Host: evil.example", b"Origin: http://evil.example", b"Content-Type: text/plain"]
            got = [ask(port, "POST", path, json.dumps(body).encode(), foreign)[0] for path, body in POSTS.items()
                   for _ in range(4)]
            got += [ask(port, "GET", path, headers=[b"Host: evil.example"])[0] for path in GETS]
            rows.append(("Host: evil.example, Origin: http://evil.example, text/plain, to all 6 POST endpoints x4; "
                         "the GET paths with a foreign Host", _counts(got)))
            cases = {"Origin of another local port": [own, f"Origin: http://127.0.0.1:{port + 1}".encode(),
                                                      b"Content-Type: text/plain"],
                     "same, with the token and JSON": [*auth, f"Origin: http://127.0.0.1:{port + 1}".encode()],
                     "Sec-Fetch-Site: cross-site, with the token": [*auth, b"Sec-Fetch-Site: cross-site"],
                     "Sec-Fetch-Site: same-site (another port), with the token": [*auth, b"Sec-Fetch-Site: same-site"],
                     "a form's text/plain, with the token": [own, f"Authorization: token {token}".encode(),
                                                             b"Content-Type: text/plain"],
                     "no token": [own, b"Content-Type: application/json"],
                     "a wrong token": [own, b"Authorization: token " + b"x" * len(token), b"Content-Type: application/json"]}
            body = json.dumps(POSTS["/api/train/new"]).encode()
            for what, headers in cases.items():
                rows.append((f"POST /api/train/new: {what}", _counts([ask(port, "POST", "/api/train/new", body, headers)[0]])))
            rows.append(("OPTIONS preflight from another origin",
                         _counts([ask(port, "OPTIONS", "/api/train/new",
                                      headers=[own, b"Origin: http://evil.example",
                                               b"Access-Control-Request-Method: POST"])[0]])))
            status, _, reply = ask(port, "GET", f"/?token={token}", headers=[f"Host: evil.example:{port}".encode()])
            rows.append(("DNS rebinding: GET /?token=... with Host: evil.example:PORT", _counts([status])))
            _, _, info = ask(port, "GET", "/api/info", headers=auth)
            rows.append(("/api/info's checkpoint, asked with the token", json.loads(info)["checkpoint"]))

            for side in (4096, 1024):
                rows.append(memory_row(proc.pid, port, auth, side, args.concurrent))

            ids = [json.loads(ask(port, "POST", "/api/train/new", body, auth)[2])["session"] for _ in range(2)]
            guesses = [ask(port, "POST", "/api/train/step", json.dumps({"session": g, "steps": 1}).encode(), auth)[0]
                       for g in ("1", "2", "3")]
            rows.append(("session ids", f"{ids[0]!r}, {ids[1]!r}; guessing 1, 2, 3: {_counts(guesses)}"))

            for n in (10, 200):
                n, still, last, at_once = trickle(port, n, args.trickle_seconds, auth)
                rows.append((f"{n} sockets each sending a request one byte every 2 s",
                             f"{still} of {n} still open after {args.trickle_seconds:.0f} s; {at_once} refused at once, "
                             f"the last closed at {last:.0f} s (seen at the next byte)"))
            time.sleep(0.5)
            rows.append(("Content-Length: \u00b2 (a Unicode digit)",
                         _counts([ask(port, "POST", "/api/convolve", b"{}", [*auth, "Content-Length: \u00b2".encode()])[0]])))
            esc = ask(port, "\x1b[31mGET\x1b]0;owned\x07", "/\x1b[2J", headers=[own])[0]
            time.sleep(0.2)
            raw_esc = any("\x1b" in line or "\x07" in line for line in err_lines)
            shown = "yes" if raw_esc else "no, escaped: " + next((line.strip() for line in err_lines if "\\x1b" in line), "?")
            rows.append(("a request method and path holding terminal escape codes",
                         f"{_counts([esc])}; escape codes in the terminal: {shown}"))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                free = "free"
            except OSError:
                free = "still taken"
        left = sorted(p.name for p in Path(tmp).iterdir() if p.name != "checkpoint.npz")
        rows.append(("SIGTERM", f"exit status {proc.returncode}, {'says stopped' if 'stopped' in out else 'no message'}, "
                                f"port {free}, files left: {left or 'none'}"))
    print("| what was sent | what happened |\n|---|---|")
    for what, happened in rows:
        print(f"| {what} | {happened} |")
    if args.json:
        Path(args.json).write_text(json.dumps([{"sent": w, "answer": h} for w, h in rows], indent=1))
    return 0


def _counts(statuses):
    counts = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{n}x {s if s else 'closed'}" for s, n in sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
