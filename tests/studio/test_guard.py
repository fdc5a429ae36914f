"""Only the page the studio served, in this machine's browser, can use it: Host, Origin, token, cookie, JSON."""
import pytest

from minicnn.studio.guard import Guard, host_name, printable

NEW_SESSION = {"task": "sobel", "seed": 0, "lr": 0.2}
PATHS = [("GET", "/"), ("GET", "/static/studio.js"), ("GET", "/api/info"), ("GET", "/nope"),
         ("POST", "/api/train/new"), ("POST", "/api/convolve"), ("POST", "/api/backward"), ("POST", "/api/train/at")]


def _ask(client, method, path, headers, token=True):
    if method == "GET":
        return client.get(path, headers=headers, token=token)
    return client.post(path, NEW_SESSION, headers=headers, token=token)


def _sessions(client):
    status, info = client.get("/api/info")
    assert status == 200
    return info["sessions"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "127.0.0.2",
                                  "localhost:1", "127.0.0.1:80", "127.0.0.1:{port}0"])
def test_a_foreign_host_is_refused_on_every_path(studio_client, host):
    """DNS rebinding: a foreign name resolved to 127.0.0.1 sends its own Host, with or without the port."""
    host = host.format(port=studio_client.port)
    before = _sessions(studio_client)
    for method, path in PATHS:
        status, answer = _ask(studio_client, method, path, {"Host": host})
        assert status == 403 and "this studio answers requests for" in answer["error"], (host, method, path)
    assert _sessions(studio_client) == before


def test_its_own_names_are_answered(studio_client, start_studio):
    port = studio_client.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        assert studio_client.get("/api/info", headers={"Host": host})[0] == 200, host
    # a name the user allowed (--allow-host), and only with the port
    client = start_studio(None, allow_hosts=["studio.lan"])
    assert client.get("/api/info", headers={"Host": f"studio.lan:{client.port}"})[0] == 200
    assert client.get("/api/info", headers={"Host": "studio.lan"})[0] == 403


def test_a_request_without_one_host_is_refused(studio_client):
    no_host = b"GET /api/info HTTP/1.1\r\nAuthorization: token " + studio_client.token.encode() + b"\r\n\r\n"
    assert studio_client.raw(no_host) == 403
    two = studio_client.auth + f"Host: evil.example:{studio_client.port}\r\n".encode()
    assert studio_client.raw(b"GET /api/info HTTP/1.1\r\n" + two + b"\r\n") == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://127.0.0.1:{port}.evil.example"])
def test_a_foreign_origin_is_refused(studio_client, origin):
    origin = origin.format(port=studio_client.port)
    before = _sessions(studio_client)
    for method, path in PATHS:
        status, answer = _ask(studio_client, method, path, {"Origin": origin})
        assert status == 403 and "its own page" in answer["error"], (origin, method, path)
    assert _sessions(studio_client) == before
    # its own origin is welcome
    own = {"Origin": f"http://127.0.0.1:{studio_client.port}", "Sec-Fetch-Site": "same-origin"}
    assert _ask(studio_client, "POST", "/api/train/new", own)[0] == 200


def test_a_cross_site_request_is_refused(studio_client):
    before = _sessions(studio_client)
    for site in ("cross-site", "CROSS-SITE"):
        for method, path in PATHS:
            status, answer = _ask(studio_client, method, path, {"Sec-Fetch-Site": site})
            assert status == 403, (site, method, path)
    # another port on this machine is the same site, but not the same origin: no API for it either
    for method, path in [p for p in PATHS if p[1].startswith("/api/")]:
        assert _ask(studio_client, method, path, {"Sec-Fetch-Site": "same-site"})[0] == 403, path
    assert _sessions(studio_client) == before
    # a link to the page followed from another site opens the page (its own requests then are same-origin)
    followed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert studio_client.get("/", headers=followed, token=False)[0] == 200
    assert studio_client.get("/static/studio.js", headers=followed)[0] == 403
    assert studio_client.get("/", headers={**followed, "Sec-Fetch-Dest": "iframe"})[0] == 403


def test_no_preflight_is_answered(studio_client):
    headers = {"Origin": f"http://127.0.0.1:{studio_client.port}", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type"}
    status, _ = studio_client.request("OPTIONS", "/api/train/new", headers=headers)
    assert status == 405
    assert not any(k.lower().startswith("access-control-") for k in studio_client.last_headers)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx", "", None])
def test_a_post_must_say_it_is_json(studio_client, content_type):
    """What a form or a no-cors fetch from another page can send (a browser sends JSON only after a preflight)."""
    before = _sessions(studio_client)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    body = '{"task": "sobel", "seed": 0, "lr": 0.2}'
    conn_headers = {"Authorization": f"token {studio_client.token}", **headers}   # None: http.client adds no type
    status, answer = studio_client.request("POST", "/api/train/new", body=body, headers=conn_headers)
    assert status == 415 and "application/json" in answer["error"], content_type
    assert _sessions(studio_client) == before
    ok = studio_client.request("POST", "/api/train/new", body=body,
                               headers={**conn_headers, "Content-Type": "application/json; charset=utf-8"})
    assert ok[0] == 200


@pytest.mark.parametrize("method,path", PATHS[2:3] + PATHS[4:])
def test_the_api_needs_the_token(studio_client, method, path):
    before = _sessions(studio_client)
    status, answer = _ask(studio_client, method, path, {}, token=False)
    assert status == 403 and "open the link the terminal printed" in answer["error"]
    token = studio_client.token
    other_last = "y" if token.endswith("x") else "x"   # a last character the real token does not have
    for wrong in ("token " + token[:-1] + other_last, "token " + token + "x", "token ",
                  "Bearer " + token, token, "token \u00e9t\u00e9", "token " + "1" * 5000):
        status, answer = _ask(studio_client, method, path, {"Authorization": wrong}, token=False)
        assert status in (400, 403), wrong  # 400: http.client's own refusal of a header line too long
        assert status == 403 or len(wrong) > 4000
    assert _sessions(studio_client) == before


def test_the_page_sets_the_token_as_a_strict_cookie_and_later_links_work(studio_client):
    # the page itself is served without the token: it says what to do when its requests are refused
    status, page = studio_client.get("/", token=False)
    assert status == 200 and b"minicnn studio" in page and studio_client.last_headers["Set-Cookie"] is None
    studio_client.get("/?token=" + "x" * 32, token=False)
    assert studio_client.last_headers["Set-Cookie"] is None
    studio_client.get(f"/?token={studio_client.token}", token=False)
    cookie = studio_client.last_headers["Set-Cookie"]
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    assert name_value == f"minicnn-studio-{studio_client.port}={studio_client.token}"
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes)
    assert not any(a.lower().startswith("domain") for a in attributes)   # this host only
    # the browser sends it back: the API answers without the header
    assert studio_client.get("/api/info", headers={"Cookie": name_value}, token=False)[0] == 200
    assert studio_client.get("/api/info", headers={"Cookie": f"other=1; {name_value}"}, token=False)[0] == 200
    # a cookie of an earlier start, or for another port, does not
    stale = f"minicnn-studio-{studio_client.port}=" + "y" * 32
    status, answer = studio_client.get("/api/info", headers={"Cookie": stale}, token=False)
    assert status == 403 and "earlier start" in answer["error"]
    other_port = f"minicnn-studio-{studio_client.port + 1}={studio_client.token}"
    assert studio_client.get("/api/info", headers={"Cookie": other_port}, token=False)[0] == 403
    # a wrong header is not saved by a right cookie
    headers = {"Cookie": name_value, "Authorization": "token nope"}
    assert studio_client.get("/api/info", headers=headers, token=False)[0] == 403


def test_no_token_when_asked_for(start_studio):
    client = start_studio(None, token=False)
    assert client.url == client.base
    assert client.post("/api/train/new", NEW_SESSION, token=False)[0] == 200
    # everything else still holds
    assert client.get("/api/info", headers={"Host": "evil.example"}, token=False)[0] == 403
    assert client.get("/api/info", headers={"Origin": "http://evil.example"}, token=False)[0] == 403


def test_guard_names_and_printable_text():
    assert host_name("Studio.LAN") == "studio.lan" and host_name("::1") == "[::1]"
    assert host_name("192.168.1.20") == "192.168.1.20"
    for bad in ("a b", "evil.example:80", "", "x/y", "-x", "\x1b"):
        with pytest.raises(ValueError, match="--allow-host expects a host name"):
            host_name(bad)
    guard = Guard(8000, "t" * 32, ["studio.lan"])
    assert guard.hosts == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000", "studio.lan:8000"}
    assert guard.url() == "http://127.0.0.1:8000/?token=" + "t" * 32
    assert "localhost" in Guard(80, None).hosts and Guard(80, None).url() == "http://127.0.0.1:80/"
    assert printable("GET \x1b[31mred\x07\x9b\u202e\n") == "GET \\x1b[31mred\\x07\\x9b\\u202e\\n"
    assert printable("x" * 10, limit=4) == "xxxx..."
