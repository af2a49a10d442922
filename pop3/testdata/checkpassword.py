#!/usr/bin/python3
# A checkpassword(8) program for the POP3 tests: user $FAKE_USER with
# password $FAKE_PASS, given in clear (USER/PASS) or as APOP's MD5 digest
# of timestamp and password. On success it sets USER and HOME, changes to
# $FAKE_HOME, drops root privileges to nobody (qmail-pop3d refuses root)
# and runs the rest of argv, as checkpassword does.
import hashlib, os, sys

data = b""
while len(data) < 512:
    chunk = os.read(3, 512 - len(data))
    if not chunk:
        break
    data += chunk
parts = data.split(b"\0")
if len(parts) < 4:
    sys.exit(2)
user, password, timestamp = parts[0], parts[1], parts[2]
want_user = os.environb[b"FAKE_USER"]
want_pass = os.environb[b"FAKE_PASS"]
apop = hashlib.md5(timestamp + want_pass).hexdigest().encode()
if user != want_user or password not in (want_pass, apop):
    sys.exit(1)
home = os.environ["FAKE_HOME"]
os.environ["USER"] = user.decode()
os.environ["HOME"] = home
os.chdir(home)
if os.getuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
os.execvp(sys.argv[1], sys.argv[1:])
