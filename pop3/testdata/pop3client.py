#!/usr/bin/python3
# A POP3 session with Python's poplib, printed as JSON for the tests:
#   pop3client.py PORT MODE USER PASSWORD [HOST]
# MODE is plain (USER/PASS), apop, stls (STLS then USER/PASS) or pop3s.
# The session lists, retrieves message 1, deletes it and quits; a failed
# login prints {"error": reply}.
import json, poplib, ssl, sys

port, mode, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def s(b):
    return b.decode("latin-1")

out = {}
try:
    if mode == "pop3s":
        p = poplib.POP3_SSL(host, port, context=ctx, timeout=60)
    else:
        p = poplib.POP3(host, port, timeout=60)
    out["welcome"] = s(p.getwelcome())
    if mode == "stls":
        out["capa"] = sorted(p.capa().keys())
        out["stls"] = s(p.stls(context=ctx))
    if mode == "apop":
        out["login"] = s(p.apop(user, password))
    else:
        out["user"] = s(p.user(user))
        out["login"] = s(p.pass_(password))
    out["stat"] = list(p.stat())
    resp, lines, _ = p.list()
    out["list"] = [s(l) for l in lines]
    resp, lines, _ = p.uidl()
    out["uidl"] = [s(l) for l in lines]
    resp, lines, _ = p.retr(1)
    out["retr"] = [s(l) for l in lines]
    out["dele"] = s(p.dele(1))
    out["quit"] = s(p.quit())
except poplib.error_proto as e:
    out["error"] = s(e.args[0]) if isinstance(e.args[0], bytes) else str(e.args[0])
print(json.dumps(out))
