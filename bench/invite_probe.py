#!/usr/bin/env python3
"""INVITE->180 latency at nanosecond resolution, beside a sipp load.

Places calls one after another at --rate per second for --duration seconds:
INVITE, 407, ACK, INVITE with digest credentials (MD5), 180, 200, ACK, BYE.
Times the authenticated INVITE to its 180 with perf_counter_ns and prints
"p50_ms p99_ms samples lost". A call with no answer within 2 s is lost."""
import argparse, hashlib, os, re, socket, time


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def header(msg, name):
    m = re.search(r"^" + name + r":\s*(.*?)\r$", msg, re.M | re.I)
    return m.group(1) if m else None


class Probe:
    def __init__(self, a):
        self.a = a
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = (a.host, a.port)
        self.n = 0

    def send(self, head_and_body):
        head, _, body = head_and_body.partition("\n\n")
        self.sock.sendto((head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode(), self.target)

    def recv(self, deadline, call_id, want):
        """The next response for call_id whose status is in want (or final)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            msg = data.decode(errors="replace")
            if header(msg, "Call-ID") != call_id or not msg.startswith("SIP/2.0 "):
                continue
            code = int(msg[8:11])
            if code in want or code >= 300:
                return code, msg

    def request(self, method, uri, call_id, cseq, to_tag="", extra="", body=""):
        a = self.a
        body = body.replace("\n", "\r\n")
        branch = "z9hG4bK" + os.urandom(6).hex()
        self.send(
            f"{method} {uri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\n"
            f"From: <sip:{a.user}@{a.domain}>;tag=probe{call_id[:8]}\n"
            f"To: <sip:{a.callee}@{a.domain}>{to_tag}\n"
            f"Call-ID: {call_id}\nCSeq: {cseq} {method}\n"
            f"Contact: <sip:{a.user}@127.0.0.1:{self.port}>\nMax-Forwards: 70\n{extra}"
            f"Content-Type: application/sdp\nContent-Length: {len(body)}\n\n{body}")

    def call(self):
        """One call; the INVITE->180 time in ns, or None when it failed."""
        a = self.a
        self.n += 1
        call_id = os.urandom(8).hex() + "@probe"
        uri = f"sip:{a.callee}@{a.domain}"
        sdp = ("v=0\no=probe 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
               "m=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n")
        deadline = time.monotonic() + 2
        self.request("INVITE", uri, call_id, 1, body=sdp)
        r = self.recv(deadline, call_id, {407})
        if not r or r[0] != 407:
            return None
        msg = r[1]
        to_tag = re.search(r";tag=[^;\s>]+", header(msg, "To") or "")
        self.request("ACK", uri, call_id, 1, to_tag.group(0) if to_tag else "")
        chal = [h for h in re.findall(r"^Proxy-Authenticate:\s*(.*?)\r$", msg, re.M | re.I)
                if "SHA-256" not in h]
        if not chal:
            return None
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', chal[0]))
        cnonce, nc = os.urandom(4).hex(), "00000001"
        ha1 = md5(f"{a.user}:{p['realm']}:{a.password}")
        ha2 = md5(f"INVITE:{uri}")
        if "qop" in p:
            resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            qop = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            resp, qop = md5(f"{ha1}:{p['nonce']}:{ha2}"), ""
        opaque = f', opaque="{p["opaque"]}"' if "opaque" in p else ""
        auth = (f'Proxy-Authorization: Digest username="{a.user}", realm="{p["realm"]}", '
                f'nonce="{p["nonce"]}", uri="{uri}", response="{resp}", algorithm=MD5{qop}{opaque}\n')
        start = time.perf_counter_ns()
        self.request("INVITE", uri, call_id, 2, extra=auth, body=sdp)
        r = self.recv(deadline, call_id, {180})
        if not r or r[0] != 180:
            return None
        took = time.perf_counter_ns() - start
        r = self.recv(deadline, call_id, {200})
        if not r or r[0] != 200:
            return None
        msg = r[1]
        routes = re.findall(r"^Record-Route:\s*(.*?)\r$", msg, re.M | re.I)
        route = "".join(f"Route: {x}\n" for x in routes)
        contact = re.search(r"<([^>]+)>", header(msg, "Contact") or "")
        to_tag = re.search(r";tag=[^;\s>]+", header(msg, "To") or "")
        target = contact.group(1) if contact else uri
        tag = to_tag.group(0) if to_tag else ""
        self.request("ACK", target, call_id, 2, tag, route)
        self.request("BYE", target, call_id, 3, tag, route)
        self.recv(deadline, call_id, {200})
        return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="bench.test")
    ap.add_argument("--user", default="caller")
    ap.add_argument("--password", default="caller-secret")
    ap.add_argument("--callee", default="echo-1")
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--duration", type=float, default=8)
    a = ap.parse_args()
    probe, times, lost = Probe(a), [], 0
    t0 = time.monotonic()
    for i in range(int(a.rate * a.duration)):
        wait = t0 + i / a.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        took = probe.call()
        if took is None:
            lost += 1
        else:
            times.append(took)
    times.sort()
    if not times:
        print("n/a n/a 0", lost)
        return
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))] / 1e6
    print(f"{q(0.5):.3f} {q(0.99):.3f} {len(times)} {lost}")


if __name__ == "__main__":
    main()
