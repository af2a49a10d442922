#!/usr/bin/python3
# A checkpassword(8) program for the dialog tests: user "alice" with
# password "secret" (plain, or as a CRAM-MD5 digest of the challenge);
# user "crash" kills itself. With CHECKPW_DUMP set, the bytes read on fd 3
# are copied to that file. On success the rest of argv is executed.
import hashlib, hmac, os, signal, sys

data = b""
while len(data) < 512:
    chunk = os.read(3, 512 - len(data))
    if not chunk:
        break
    data += chunk
if os.environ.get("CHECKPW_DUMP"):
    with open(os.environ["CHECKPW_DUMP"], "wb") as f:
        f.write(data)
parts = data.split(b"\0")
user, password = parts[0], parts[1] if len(parts) > 1 else b""
challenge = parts[2] if len(parts) > 3 else b""
if user == b"crash":
    os.kill(os.getpid(), signal.SIGKILL)
ok = user == b"alice" and (
    password == b"secret"
    or (challenge and password == hmac.new(b"secret", challenge, hashlib.md5).hexdigest().encode()))
if not ok:
    sys.exit(1)
if len(sys.argv) > 1:
    os.execvp(sys.argv[1], sys.argv[1:])
sys.exit(0)
