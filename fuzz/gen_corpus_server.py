#!/usr/bin/env python3
"""gen_corpus_server.py - write the seed corpora of the server fuzz targets.

    python3 fuzz/gen_corpus_server.py [FUZZ_DIR]

fuzz/corpus/request/: a valid body of every route that takes JSON
(docs/API.md), the enrolment body built from the config and key-file seeds
of fuzz/corpus/config and fuzz/corpus/keyfile; fuzz/corpus/fields/: times,
usernames, department names, TOTP and recovery codes; fuzz/corpus/range/:
Range headers and object names.  Deterministic: running it again writes the
same files.
"""
import base64
import hashlib
import json
import os
import sys

top = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(top, "corpus")


def write(name, files):
    d = os.path.join(corpus, name)
    os.makedirs(d, exist_ok=True)
    for fname, data in files.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


def body(obj):
    return json.dumps(obj, separators=(",", ":"))


def b64(b):
    return base64.b64encode(b).decode()


def read(*path):
    with open(os.path.join(corpus, *path), "rb") as f:
        return f.read()


# ---- request bodies
config = read("config", "default")
assert config[:4] == b"CRNC"
archive_id = config[8:40]          # FORMAT.md: magic, version, archive id
keyfile = read("keyfile", "keyfile-0")
# A sealed box: "CRNX" and enough bytes for the box and a 64-byte payload.
wrap_escrow = b"CRNX" + hashlib.sha512(b"escrow").digest() * 3
name64 = hashlib.sha256(b"pack").hexdigest()

write("request", {
    "login": body({"username": "ana", "password": "correct horse battery"}),
    "totp": body({"code": "123456"}),
    "recovery": body({"recovery_code": "k7f3-9x2m-p4qa"}),
    "dept-add": body({"name": "Physics", "wave_start": "2026-11-26T09:00:00Z"}),
    "dept-wave": body({"wave_start": "2026-12-01T08:30:00.5+01:00"}),
    "dept-wave-null": body({"wave_start": None}),
    "user-add": body({"username": "ana", "password": "correct horse battery",
                      "department": "Physics", "role": "user",
                      "display": "Ana Lima"}),
    "reset-password": body({"password": "another good password"}),
    "enrol-personal": body({"name": "ana-laptop", "category": "personal",
                            "department": "Physics",
                            "archive_id": b64(archive_id),
                            "config": b64(config),
                            "wrap_escrow": b64(wrap_escrow),
                            "wrap_owner": b64(keyfile),
                            "replaces": None}),
    "enrol-shared": body({"name": "lab-pc", "category": "shared",
                          "department": "Physics",
                          "archive_id": base64.urlsafe_b64encode(archive_id).decode().rstrip("="),
                          "config": b64(config),
                          "wrap_escrow": b64(wrap_escrow)}),
    "device-patch": body({"category": "personal", "department": "IT",
                          "owner": "ana"}),
    "device-patch-null": body({"category": "shared", "owner": None}),
    "status": body({"phase": "backup", "files_selected": 59000,
                    "bytes_selected": 1600000000, "files_todo": 12,
                    "bytes_todo": 4096, "errors": 0}),
    "have": body({"names": [name64, hashlib.sha256(b"index").hexdigest()]}),
    "empty": "{}",
    "not-object": "[1,2,3]",
    "unknown-key": body({"username": "ana", "pasword": "x"}),
    "duplicate-key": '{"code":"123456","code":"654321"}',
    "utf8-key": '{"' + "k" * 63 + '\u00e9\u00e9":1}',
})

# ---- text fields
write("fields", {
    "time-z": "2026-11-26T10:00:00Z",
    "time-frac-offset": "2026-11-26T10:00:00.5+01:00",
    "time-neg-offset": "1999-12-31t23:59:59-05:30",
    "time-leap-day": "2024-02-29T12:00:00Z",
    "time-leap-second": "2016-12-31T23:59:60Z",
    "time-common-feb29": "2025-02-29T12:00:00Z",   # must be refused
    "time-epoch-offset": "1970-01-01T00:00:00+01:00",  # refused: 1969
    "time-year-10000": "9999-12-31t23:59:59-05:30",    # refused: 10000
    "username": "ana.lima@physics",
    "dept": "Physics & Chemistry",
    "totp": "123456",
    "recovery": "K7F3 9X2M P4QA",
})

# ---- Range headers and object names
write("range", {
    "first-last": "bytes=0-99",
    "open-end": "bytes=4096-",
    "suffix": "bytes=-16",
    "huge": "bytes=18446744073709551615-18446744073709551615",
    "name-hex": name64,
    "type-pack": "pack",
    "type-config": "config",
})
