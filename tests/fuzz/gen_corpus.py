#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (run it after
changing a seed; the files are committed). Seeds for fuzz_request and
fuzz_conn use fuzz_segments.h's layout: byte 0 = options << 4 | plan length,
then the plan, then the payload."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

H = b"Host: x\r\n"


def req(line, headers=b"", body=b"", host=True):
    return line + b"\r\n" + (H if host else b"") + headers + b"\r\n" + body


def chunked(*parts, ext=b""):
    out = b""
    for p in parts:
        out += b"%x" % len(p) + ext + b"\r\n" + p + b"\r\n"
    return out + b"0\r\n\r\n"


GET = req(b"GET /zzz HTTP/1.1")
FORM = b"data=hello+world%21"
HTTP = {
    "get": GET,
    "get_root_10": req(b"GET / HTTP/1.0", host=False),
    "get_keepalive_10": req(b"GET /multivac HTTP/1.0", b"Connection: keep-alive\r\n", host=False),
    "head": req(b"HEAD /multivac HTTP/1.1"),
    "options": req(b"OPTIONS * HTTP/1.1"),
    "get_query_wait": req(b"GET /multivac?wait=5&x=%41 HTTP/1.1"),
    "get_absolute": req(b"GET http://example.com:80/./multivac/../zzz/ HTTP/1.1"),
    "get_dots_escapes": req(b"GET //multivac/%2e%2E/%7a%7A%7a/%2F HTTP/1.1"),
    "get_above_root": req(b"GET /../etc HTTP/1.1"),
    "get_bad_escape": req(b"GET /zz%zz HTTP/1.1"),
    "post_form": req(b"POST /multivac/data HTTP/1.1",
                     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n" % len(FORM),
                     FORM),
    "post_chunked": req(b"POST /multivac/data HTTP/1.1",
                        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
                        chunked(b"data=ab", b"cd%20e")),
    "post_chunk_ext": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: chunked\r\n",
                          chunked(b"data=x", ext=b";name=value;q=\"s\"")),
    "post_expect": req(b"POST /multivac/data HTTP/1.1",
                       b"Expect: 100-continue\r\nContent-Length: 6\r\n", b"data=1"),
    "post_headers": req(b"POST /multivac/data HTTP/1.1",
                        b"Authorization: Bearer tok\r\nIdempotency-Key: k1\r\nX-Request-Id: r1\r\n"
                        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 4\r\n", b"data"),
    "pipelined": GET + req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 6\r\n", b"data=2")
                 + req(b"HEAD / HTTP/1.1") + req(b"GET /healthz HTTP/1.1", b"Connection: close\r\n"),
    "pipelined_leading_crlf": b"\r\n" + GET + b"\r\n" + GET,
    "upgrade": req(b"GET / HTTP/1.1", b"Connection: Upgrade\r\nUpgrade: websocket\r\n") + b"junk",
    "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "unknown_method": req(b"BREW /pot HTTP/1.1"),
    "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "http09": b"GET /\r\n",
    "version_2": req(b"GET / HTTP/2.0"),
    # Smuggling and strictness: each must be refused.
    "no_host": req(b"GET / HTTP/1.1", host=False),
    "two_hosts": req(b"GET / HTTP/1.1", b"Host: y\r\n"),
    "dup_cl": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"),
    "dup_cl_diff": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
    "cl_sign": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: +3\r\n", b"abc"),
    "cl_space": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 1 2\r\n", b"abc"),
    "cl_overflow": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 99999999999999999999999\r\n"),
    "cl_te": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                 chunked(b"x")),
    "te_cl": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                 chunked(b"x")),
    "te_gzip_chunked": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: gzip, chunked\r\n",
                           chunked(b"x")),
    "te_identity_chunked": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: identity, chunked\r\n",
                               chunked(b"x")),
    "te_twice": req(b"POST /multivac/data HTTP/1.1",
                    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked(b"x")),
    "te_http10": req(b"POST /multivac/data HTTP/1.0", b"Transfer-Encoding: chunked\r\n", chunked(b"x"),
                     host=False),
    "chunk_overflow": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: chunked\r\n",
                          b"fffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    "chunk_bad_ext": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: chunked\r\n",
                         b"1;a b\r\nx\r\n0\r\n\r\n"),
    "chunk_data_no_crlf": req(b"POST /multivac/data HTTP/1.1", b"Transfer-Encoding: chunked\r\n",
                              b"1\r\nxYZ0\r\n\r\n"),
    "obs_fold": req(b"GET / HTTP/1.1", b"X-A: a\r\n  folded\r\n"),
    "space_before_colon": req(b"GET / HTTP/1.1", b"X-A : a\r\n"),
    "empty_name": req(b"GET / HTTP/1.1", b": a\r\n"),
    "bare_cr_line": b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare_cr_value": req(b"GET / HTTP/1.1", b"X-A: a\rb\r\n"),
    "nul_value": req(b"GET / HTTP/1.1", b"X-A: a\x00b\r\n"),
    "nul_target": req(b"GET /a\x00b HTTP/1.1"),
    "crlf_cr_x": b"GET / HTTP/1.1\r\nHost: x\r\n\rX",
    "bare_lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "expect_other": req(b"POST /multivac/data HTTP/1.1", b"Expect: 200-ok\r\nContent-Length: 1\r\n", b"x"),
    "body_too_large": req(b"POST /multivac/data HTTP/1.1", b"Content-Length: 70000\r\n", b"x" * 64),
    "long_header_name": b"GET /zzz HTTP/1.1\r\nHost: x\r\n" + b"A" * 64 + b"BBBBBBBB: v\r\n\r\n",
    "long_expect": req(b"POST /multivac/data HTTP/1.1", b"Expect: " + b"1" * 80 + b"\r\nContent-Length: 1\r\n", b"x"),
    "many_headers": req(b"GET / HTTP/1.1", b"".join(b"X-%d: v\r\n" % i for i in range(12))),
    "colon_lines": req(b"GET / HTTP/1.1", b"X: \r\n" * 40),
    "long_target": req(b"GET /" + b"a" * 300 + b" HTTP/1.1"),
}

# Plans: whole, one byte at a time, and a few irregular cuts.
PLANS = [b"", b"\x00", b"\x02\x00\x10", b"\x05\x00\x00\x2f", b"\x81\x00"]


def seg(opts, plan, payload):
    return bytes([(opts << 4) | len(plan)]) + plan + payload


def request_corpus():
    out = {}
    for i, (name, payload) in enumerate(sorted(HTTP.items())):
        out[name] = seg(0, PLANS[i % len(PLANS)], payload)
        out[name + "_small"] = seg(1 | 2, PLANS[(i + 1) % len(PLANS)], payload)
    return out


def conn_corpus():
    out = {}
    for i, (name, payload) in enumerate(sorted(HTTP.items())):
        if i % 2 == 0 or name.startswith(("post", "pipelined", "get", "head")):
            out[name] = seg(i % 16, PLANS[i % len(PLANS)], payload)
    big = b"".join(req(b"GET /zzz HTTP/1.1") for _ in range(6))
    out["slow_reader_big"] = seg(8, b"", big)
    out["pipelined_async"] = seg(2 | 4, b"\x03", HTTP["pipelined"] * 3)
    return out


def form_corpus():
    out = {}
    url = [b"data=hello", b"a=1&data=%C3%A9t%C3%A9&data=second", b"data=%C0%80", b"data=%ED%A0%80",
           b"data=%F4%90%80%80", b"data=%zz", b"data=+a+b+", b"x=1&y", b"data", b"data=%F0%9F%98%80"]
    for i, u in enumerate(url):
        out["url_%d" % i] = bytes([0]) + u
    out["url_named"] = bytes([4, 3]) + b"key" + b"key=v%41lue"

    def mp(boundary, parts, quoted=False, preamble=b"", close=True):
        body = preamble
        for headers, content in parts:
            body += b"--" + boundary + b"\r\n" + headers + b"\r\n" + content + b"\r\n"
        if close:
            body += b"--" + boundary + b"--\r\n"
        mode = 1 | (8 if quoted else 0)
        return bytes([mode, len(boundary)]) + boundary + body

    fd = b'Content-Disposition: form-data; name="data"\r\n'
    out["mp_simple"] = mp(b"xyz", [(fd, b"hello")])
    out["mp_quoted"] = mp(b"a b'c", [(fd, b"v\r\nw")], quoted=True)
    out["mp_file_first"] = mp(b"B0UND", [(b'Content-Disposition: form-data; name="data"; filename="f.txt"\r\n'
                                          b"Content-Type: text/plain\r\n", b"file"), (fd, b"field")])
    out["mp_preamble"] = mp(b"--", [(b"", b"no headers"), (fd, b"\xc3\xa9")], preamble=b"ignored\r\n")
    out["mp_unclosed"] = mp(b"q", [(fd, b"x")], close=False)
    out["mp_bad_utf8"] = mp(b"q", [(fd, b"\xed\xa0\x80\xc0\x80")])
    out["mp_name_star"] = mp(b"q", [(b"Content-Disposition: form-data; name=\"data\"; filename*=UTF-8''x\r\n", b"x"),
                                    (b"content-disposition: FORM-DATA; NAME=data\r\n", b"y")])
    out["raw_ct"] = bytes([2]) + b"Multipart/Form-Data ; charset=utf-8; boundary=\"x\"\n--x\r\n" + fd + b"\r\nz\r\n--x--"
    out["raw_ct_url"] = bytes([2]) + b"application/x-www-form-urlencoded; charset=UTF-8\ndata=1"
    out["no_ct"] = bytes([3]) + b"data=1"
    out["utf8_edges"] = bytes([3]) + b"\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"
    out["utf8_bad"] = bytes([3]) + b"\xc1\xbf\xe0\x9f\xbf\xed\xbf\xbf\xf4\x90\x80\x80\xf5\x80\x80\x80\xfe\xff\x80"
    return out


def config_corpus():
    # Line selectors: the index in fuzz_config.c's vars[], 25 argv, 26 raw.
    def line(sel, value):
        return bytes([sel]) + value

    out = {}
    urls = [b"redis://127.0.0.1:6379/0", b"redis://:p%40ss@redis:6380/2", b"redis://user:pw@@host",
            b"redis://[::1]:6379", b"rediss://h", b"redis://h:0", b"redis://h/99999999", b"redis://:%00@h",
            b"0.0.0.0:5000", b"[::1]:8080", b":5000", b"5000", b"[::1]", b"host:65536", b"[1.2.3.4]:1"]
    for i, u in enumerate(urls):
        out["url_%d" % i] = u
    out["env_all"] = b"\n".join([
        line(0, b"127.0.0.1:0"), line(1, b"redis://:secret@r:6379/1"), line(2, b"mongodb://u:p@m:27017/db"),
        line(6, b"multivac"), line(7, b"mv:"), line(8, b"4"), line(9, b"100"), line(10, b"65536"),
        line(12, b"1000"), line(13, b"100"), line(15, b"10000000"), line(17, b"65536"), line(24, b"WARN")])
    out["env_mongo_server"] = b"\n".join([line(3, b"mongo:27017"), line(4, b"user"), line(5, b"p@ss:/")])
    out["env_mongo_srv"] = b"\n".join([line(3, b"mongodb+srv://cluster.example.com")])
    out["env_bad_numbers"] = b"\n".join([line(8, b"65"), line(9, b"-1"), line(10, b"1e6")])
    out["env_bad_mongo"] = b"\n".join([line(2, b"mongodb://u:p@ss@h/")])
    out["argv"] = b"\n".join([line(25, b"serve"), line(25, b"--listen=:1"), line(25, b"--redis-url"),
                              line(25, b"redis://h"), line(26, b"REDIS_URL")])
    out["argv_help"] = line(25, b"--help")
    return out


def write(target, files):
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, content in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(content)


def main():
    write("fuzz_request", request_corpus())
    write("fuzz_conn", conn_corpus())
    write("fuzz_form", form_corpus())
    write("fuzz_config", config_corpus())
    return 0


if __name__ == "__main__":
    sys.exit(main())
