"""Raw-socket HTTP/1.1 client helpers for the hostile-input battery.

No HTTP library frames anything here: requests are bytes we write ourselves, in one
write, in 1-byte segments, or in seeded random segments with tiny pauses, and responses
are parsed from the byte stream with Content-Length framing (chunked responses too),
so that the tests see exactly what the server put on the wire.
"""

import errno
import os
import random
import select
import socket
import time

HOST = "127.0.0.1"

# Split modes every request of the battery is sent in.
SPLIT_MODES = ("whole", "bytes", "random")

# 1-byte mode: pause after each byte for the first and last PAUSE_EDGE bytes of a
# payload (where the parser changes state most), and every PAUSE_EVERY bytes in the
# middle, so that large payloads stay fast while small ones arrive one byte per read.
PAUSE = 0.0005
PAUSE_EDGE = 160
PAUSE_EVERY = 64
# Random mode: a handful of segments, ~1 ms apart.
RANDOM_SEGMENTS = (3, 8)
RANDOM_PAUSE = 0.001

_CLOSE_ERRNOS = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN)


def seed_for(name):
    """A stable seed per test case name (override all with HOSTILE_SEED=<int>)."""
    forced = os.environ.get("HOSTILE_SEED")
    if forced:
        return int(forced)
    return sum((i + 1) * b for i, b in enumerate(name.encode())) & 0xFFFFFFFF


def connect(port, timeout=5.0, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((HOST, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def segments(payload, mode, seed=0):
    """[(bytes, pause_after_seconds)] for a split mode."""
    n = len(payload)
    if mode == "whole" or n <= 1:
        return [(payload, 0.0)]
    if mode == "bytes":
        out = []
        for i in range(n):
            edge = i < PAUSE_EDGE or i >= n - PAUSE_EDGE
            out.append((payload[i:i + 1], PAUSE if edge or i % PAUSE_EVERY == 0 else 0.0))
        return out
    if mode == "random":
        rng = random.Random(seed)
        k = min(n - 1, rng.randint(*RANDOM_SEGMENTS) - 1)
        cuts = sorted(rng.sample(range(1, n), k))
        bounds = [0, *cuts, n]
        return [(payload[a:b], RANDOM_PAUSE) for a, b in zip(bounds, bounds[1:])]
    if mode.startswith("at:"):  # "at:<offset>:<pause seconds>" - one split, one pause
        _, off, pause = mode.split(":")
        off = int(off)
        return [(payload[:off], float(pause)), (payload[off:], 0.0)]
    raise ValueError(f"unknown split mode {mode!r}")


SEND_BUDGET = 4.0  # seconds: a server that keeps reading a huge payload is not waited for


def send(sock, payload, mode="whole", seed=0, budget=SEND_BUDGET):
    """Send payload split as mode says. Returns True if all of it was sent, False if
    the server closed or reset the connection first (an early answer is legitimate),
    or stopped reading, or the send budget ran out."""
    deadline = time.monotonic() + budget
    for chunk, pause in segments(payload, mode, seed):
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(chunk)
        except socket.timeout:
            return False  # the server stopped reading (it answered early, or is bounded)
        except OSError as e:
            if e.errno in _CLOSE_ERRNOS:
                return False
            raise
        if pause:
            time.sleep(pause)
    return True


class Reader:
    """Buffers what the server sends on one socket; parses responses from it."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False   # EOF or reset seen
        self.reset = False

    def _fill(self, deadline):
        """Read more bytes before deadline. False on timeout, or if already closed."""
        if self.closed:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError as e:
            if e.errno in _CLOSE_ERRNOS:
                self.closed = self.reset = True
                return False
            raise
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                return False
        return True

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self, timeout=3.0, head=False):
        """One response: Response, or None if nothing (complete) arrived in time.

        Interim 1xx responses are returned like any other (the caller reads again)."""
        deadline = time.monotonic() + timeout
        saved = self.buf
        line = self._line(deadline)
        if line is None:
            self.buf = saved
            return None
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise AssertionError(f"not an HTTP/1.x status line: {line!r} (rest {self.buf[:200]!r})")
        status = int(parts[1])
        headers = []
        while True:
            h = self._line(deadline)
            if h is None:
                raise AssertionError(f"incomplete response header section after {line!r}")
            if h == b"":
                break
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep:
                raise AssertionError(f"malformed response header line {h!r}")
            headers.append((name.strip().lower(), value.strip()))
        r = Response(parts[0], status, headers, b"", line)
        if head or status < 200 or status in (204, 304):
            return r
        if r.header("transfer-encoding").lower() == "chunked":
            body = b""
            while True:
                size_line = self._line(deadline)
                if size_line is None:
                    raise AssertionError("incomplete chunked response body")
                size = int(size_line.split(b";")[0], 16)
                if not self._need(size + 2, deadline):
                    raise AssertionError("incomplete chunked response body")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
            r.body = body
            return r
        cl = r.header("content-length")
        if cl == "":
            # No framing: the body runs to the close (HTTP/1.0 style).
            while self._fill(deadline):
                pass
            r.body, self.buf = self.buf, b""
            r.unframed = True
            return r
        n = int(cl)
        if not self._need(n, deadline):
            raise AssertionError(f"response body shorter than Content-Length {n}: "
                                 f"{line!r} got {len(self.buf)} bytes: {self.buf[:200]!r}")
        r.body, self.buf = self.buf[:n], self.buf[n:]
        return r

    def final_response(self, timeout=3.0, head=False):
        """The next non-1xx response (interim ones are kept in self.interim)."""
        deadline = time.monotonic() + timeout
        self.interim = []
        while True:
            r = self.response(max(0.0, deadline - time.monotonic()), head)
            if r is None or r.status >= 200:
                return r
            self.interim.append(r)

    def wait_close(self, timeout=2.0):
        """True if the server closes (EOF or reset) within timeout with no further
        bytes; extra bytes stay in self.buf (the caller reports them)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self._fill(deadline):
                break
        return self.closed

    def quiet(self, timeout=0.2):
        """True if nothing arrives and the connection stays open for timeout."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        return not self.closed and not self.buf


class Response:
    def __init__(self, version, status, headers, body, status_line):
        self.version, self.status, self.headers = version, status, headers
        self.body, self.status_line = body, status_line
        self.unframed = False

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return ""

    def header_all(self, name):
        return [v for k, v in self.headers if k == name]

    def __repr__(self):
        return f"<{self.status_line!r} {self.headers!r} body={self.body[:120]!r}>"


def exchange(port, payload, mode="whole", seed=0, n=1, heads=(), timeout=3.0,
             close_timeout=1.5):
    """Send payload (split per mode), read up to n responses, then see if it closes.

    Returns (responses, closed, extra_bytes, all_sent). responses stop early when the
    server closes or nothing complete arrives within timeout."""
    with connect(port, timeout=timeout) as s:
        all_sent = send(s, payload, mode, seed)
        rd = Reader(s)
        responses = []
        for i in range(n):
            r = rd.final_response(timeout, head=i in heads)
            if r is None:
                break
            responses.extend(rd.interim)
            responses.append(r)
        closed = rd.wait_close(close_timeout)
        return responses, closed, rd.buf, all_sent


def alive(port, timeout=3.0):
    """(ok, detail): a normal GET / on a new connection answers 200."""
    try:
        with connect(port, timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: alive\r\nConnection: close\r\n\r\n")
            r = Reader(s).response(timeout)
    except OSError as e:
        return False, f"GET / failed: {e!r}"
    if r is None or r.status != 200:
        return False, f"GET / -> {r!r}"
    return True, ""


def readable(sock):
    """True if the socket has data or EOF waiting (non-blocking check)."""
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime, stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
