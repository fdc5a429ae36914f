"""Who may use the studio: only the page it served, in a browser on this machine (Jupyter's rules).

Listening on 127.0.0.1 keeps other machines out, not other web pages: any page
open in a browser here can send requests to 127.0.0.1.  ``Guard.check`` refuses
a request unless

- its ``Host`` names this server (``127.0.0.1``, ``localhost`` or ``[::1]`` with
  the port, or a name the user allowed): a page on a foreign name resolved to
  127.0.0.1 (DNS rebinding) gets 403, on every path;
- its ``Origin``, when it has one, is the server's own, and its
  ``Sec-Fetch-Site`` is not ``cross-site`` (403); an ``/api/`` request must
  also be ``same-origin`` (a page on another local port is ``same-site``);
- an ``/api/`` request carries the start's token, as the header
  ``Authorization: token TOKEN`` or as the cookie the page's first visit set
  (``HttpOnly``, ``SameSite=Strict``, named after the port) (403);
- a POST says ``Content-Type: application/json`` (415), which a browser never
  sends from another origin without a preflight, and the server answers none.

The one cross-site request let through is a link followed to the page itself
(``GET /``, a top-level navigation): the page is the package's own file, and
its requests then come from the studio's own origin.
"""
import hmac
import re
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from minicnn.studio.api import ApiError

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
_HOST_NAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                        r"|\[[0-9A-Fa-f:.]+\])$")
NO_TOKEN = "open the link the terminal printed when the studio started (it ends in ?token=...)"


def new_token():
    """A fresh secret for one start of the studio: 32 URL-safe characters (192 random bits)."""
    return secrets.token_urlsafe(24)


def host_name(text):
    """An ``--allow-host`` value: a host name or IP address without a port (IPv6 in brackets), lowercased."""
    name = text.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]" if name.count(":") > 1 else name
    if not _HOST_NAME.match(name):
        raise ValueError(f"--allow-host expects a host name or an IP address without a port (like studio.lan "
                         f"or 192.168.1.20), got {text!r}")
    return name


def printable(text, limit=300):
    """``text`` cut to ``limit`` characters, every control or invisible character escaped (\\x1b, \\u202e):
    what a client sent can reach the terminal only as plain characters."""
    text = str(text)
    cut = text[:limit]
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in cut) + (
        "..." if len(text) > limit else "")


class Guard:
    """The rules of one running studio.

    Parameters
    ----------
    port : the port the server listens on
    token : the start's secret (``new_token()``), or None when the user asked for none (``--no-token``)
    allow_hosts : more names the ``Host`` header may give (``--allow-host``, or the address listened on)
    """

    def __init__(self, port, token, allow_hosts=()):
        self.port, self.token = port, token
        self.names = tuple(dict.fromkeys(LOCAL_NAMES + tuple(host_name(h) for h in allow_hosts)))
        self.hosts = {f"{name}:{port}" for name in self.names} | (set(self.names) if port == 80 else set())
        self.origins = {f"http://{host}" for host in self.hosts}
        self.cookie_name = f"minicnn-studio-{port}"

    def url(self, name="127.0.0.1"):
        """The link to print and open: ``http://NAME:PORT/?token=TOKEN`` (Jupyter's form)."""
        return f"http://{name}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def check(self, method, path, headers):
        """Raise ApiError (403 or 415) unless this request may be answered; ``headers`` as http.server parsed them."""
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.hosts:
            got = "no Host header" if not hosts else f"Host {', '.join(printable(h, 80) for h in hosts)!r}"
            raise ApiError(f"this studio answers requests for {' or '.join(sorted(self.hosts))}, not {got}", 403)
        origins = headers.get_all("Origin") or []
        if len(origins) > 1 or (origins and origins[0].strip().lower() not in self.origins):
            raise ApiError(f"the studio answers only its own page, not one from {printable(origins[0], 80)!r}", 403)
        site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
        api = path.startswith("/api/")
        followed_link = (method == "GET" and path == "/" and headers.get("Sec-Fetch-Mode") == "navigate"
                         and headers.get("Sec-Fetch-Dest") == "document")
        if (site == "cross-site" and not followed_link) or (api and site not in ("", "same-origin", "none")):
            raise ApiError(f"the studio answers only its own page, not a request from another site ({site})", 403)
        if not api:
            return
        if self.token is not None:
            self._check_token(headers)
        if method == "POST":
            kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json" or len(headers.get_all("Content-Type")) != 1:
                raise ApiError(f"a POST must say Content-Type: application/json, got {printable(kind, 80) or 'none'!r}", 415)

    def _check_token(self, headers):
        auth = headers.get_all("Authorization") or []
        if auth:
            scheme, _, value = auth[0].strip().partition(" ")
            if len(auth) > 1 or scheme.lower() != "token":
                raise ApiError("send the token as one header 'Authorization: token TOKEN'", 403)
            if not self._is_token(value.strip()):
                raise ApiError(f"wrong token: the studio makes a new one each time it starts; {NO_TOKEN}", 403)
            return
        cookie = self._cookie(headers)
        if cookie is None:
            raise ApiError(f"this request carries no token: {NO_TOKEN}", 403)
        if not self._is_token(cookie):
            raise ApiError(f"this browser holds the token of an earlier start of the studio: {NO_TOKEN}", 403)

    def _is_token(self, value):
        return hmac.compare_digest(value.encode("utf-8", "surrogateescape"), self.token.encode())

    def _cookie(self, headers):
        for line in headers.get_all("Cookie") or []:
            jar = SimpleCookie()
            try:
                jar.load(line)
            except CookieError:
                continue
            if self.cookie_name in jar:
                return jar[self.cookie_name].value
        return None

    def set_cookie(self, query):
        """The ``Set-Cookie`` value when ``query`` (the page's ``?token=...``) holds the right token, else None."""
        if self.token is None:
            return None
        given = parse_qs(query, max_num_fields=8).get("token", [])
        if len(given) != 1 or not self._is_token(given[0]):
            return None
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"
