#!/usr/bin/env python3
# A WebSocket client for the shell tests, written from RFC 6455 with raw sockets so that it can
# also misbehave: ws-client.py [--unix SOCK | --tls HOST:PORT --cacert FILE] [--token T]
# [--protocol P] [--header 'Name: value'] PATH MODE. It prints what happened, one fact a line:
# "status N" (the answer to the upgrade), then per mode "text PAYLOAD", "close CODE", "eof",
# "timeout"; a refusal's body follows as "body ...". Mode "greeting" reads data frames after the
# 101 until it has an RFB ProtocolVersion (12 bytes), prints it as "body ..." (Latin-1), then
# closes (1000).
import argparse
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def connect(a):
    if a.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.unix)
        return s
    host, port = a.tls.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=a.cacert)
    raw = socket.create_connection((host, int(port)))
    return ctx.wrap_socket(raw, server_hostname=host)


def request(a, key, version="13", protocol=None):
    lines = ["GET %s HTTP/1.1" % a.path, "Host: localhost", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: %s" % version]
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if protocol:
        lines.append("Sec-WebSocket-Protocol: %s" % protocol)
    if a.token:
        lines.append("Authorization: Bearer %s" % a.token)
    lines += a.header
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self, timeout):
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            raise TimeoutError()
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            d = b""
        if not d:
            raise EOFError()
        self.buf += d

    def head(self, timeout=10):
        while b"\r\n\r\n" not in self.buf:
            self.fill(timeout)
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = h.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def body(self, headers, timeout=5):
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self.fill(timeout)
        return self.buf[:n].decode("utf-8", "replace")

    def need(self, n, timeout):
        while len(self.buf) < n:
            self.fill(timeout)

    def frame(self, timeout=10):
        self.need(2, timeout)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ValueError("a masked frame from the server")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self.need(4, timeout)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self.need(10, timeout)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self.need(off + n, timeout)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x80 != 0, b0 & 0x0F, payload

    def send(self, opcode, payload=b"", fin=True, mask=True, length=None):
        n = len(payload) if length is None else length
        h = bytes([(0x80 if fin else 0) | opcode])
        m = 0x80 if mask else 0
        if n < 126:
            h += bytes([m | n])
        elif n < 65536:
            h += bytes([m | 126]) + struct.pack(">H", n)
        else:
            h += bytes([m | 127]) + struct.pack(">Q", n)
        if mask:
            k = os.urandom(4)
            h += k
            payload = bytes(b ^ k[i % 4] for i, b in enumerate(payload))
        self.s.sendall(h + payload)


def until_close(c, timeout, show_text=True, pong=True):
    """Print frames until CLOSE, the end, or silence for timeout seconds."""
    try:
        while True:
            fin, op, p = c.frame(timeout)
            if op == 1 and show_text:
                print("text " + p.decode())
            elif op == 9:
                print("ping")
                if pong:
                    c.send(0xA, p)
            elif op == 8:
                code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
                print("close %d" % code)
                try:
                    c.send(8, p[:2])
                except OSError:
                    pass
                return
    except TimeoutError:
        print("timeout")
    except EOFError:
        print("eof")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unix")
    ap.add_argument("--tls")
    ap.add_argument("--cacert")
    ap.add_argument("--token")
    ap.add_argument("--protocol", default="events.shepherd.io")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("path")
    ap.add_argument("mode")
    a = ap.parse_args()
    key = base64.b64encode(os.urandom(16)).decode()
    s = connect(a)
    c = Conn(s)
    m = a.mode
    if m == "slowloris":
        # the request head one byte at a time, slower than the connection timeout allows
        req = request(a, key, protocol=a.protocol)
        try:
            for i in range(len(req)):
                s.sendall(req[i:i + 1])
                time.sleep(a.timeout)
            print("sent")
        except OSError:
            print("eof")
        return
    if m == "badversion":
        s.sendall(request(a, key, version="8", protocol=a.protocol))
    elif m == "badkey":
        s.sendall(request(a, "c2hvcnQ=", protocol=a.protocol))
    elif m == "nokey":
        s.sendall(request(a, None, protocol=a.protocol))
    elif m == "noprotocol":
        s.sendall(request(a, key, protocol=None))
    else:
        s.sendall(request(a, key, protocol=a.protocol))
    try:
        status, headers = c.head()
    except EOFError:
        print("eof")
        return
    print("status %d" % status)
    if status != 101:
        print("body " + c.body(headers))
        return
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != want:
        print("bad accept")
    print("protocol " + headers.get("sec-websocket-protocol", ""))
    if m == "events":
        until_close(c, a.timeout)
    elif m == "unmasked":
        c.send(1, b"hello", mask=False)
        until_close(c, a.timeout, show_text=False)
    elif m == "oversized":
        c.send(2, b"", length=(1 << 20) + 1)  # a header announcing more than the cap
        until_close(c, a.timeout, show_text=False)
    elif m == "badopcode":
        c.send(3, b"x")
        until_close(c, a.timeout, show_text=False)
    elif m == "stray-continuation":
        c.send(0, b"x")
        until_close(c, a.timeout, show_text=False)
    elif m == "ping":
        c.send(9, b"abc")
        while True:
            fin, op, p = c.frame(a.timeout)
            if op == 0xA:
                print("pong " + p.decode())
                break
        c.send(8, struct.pack(">H", 1000))
        until_close(c, a.timeout, show_text=False)
    elif m == "idle":
        # never answers a PING: the daemon must give up on it
        until_close(c, a.timeout, show_text=False, pong=False)
    elif m == "partial":
        # half a frame header, then silence
        s.sendall(b"\x81")
        until_close(c, a.timeout, show_text=False, pong=False)
    elif m == "greeting":
        got = b""
        while len(got) < 12:
            fin, op, p = c.frame(a.timeout)
            if op in (0, 1, 2):
                got += p
            elif op == 8:
                print("close %d" % (struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005))
                return
        print("body " + got.decode("latin-1"))
        c.send(8, struct.pack(">H", 1000))
    elif m == "close":
        c.send(8, struct.pack(">H", 1000) + b"bye")
        until_close(c, a.timeout, show_text=False)
    else:
        sys.exit("unknown mode " + m)


if __name__ == "__main__":
    main()
