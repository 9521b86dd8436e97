"""Builds the package indexes of tests/dependencies_hermetic.rs into a directory, offline.

Usage: build_indexes.py OUT PORT VALUE

One package per installer, each holding VALUE, laid out as its installer fetches it from
http://127.0.0.1:PORT/:

- pip (PEP 503 simple API): simple/warden-fixture-py/index.html linking
  files/warden_fixture_py-1.0.0-py3-none-any.whl with its sha256; the wheel is written here with
  zipfile (PEP 427: the module, METADATA, WHEEL, RECORD), so neither wheel nor setuptools is
  needed.
- npm (registry API): npm/warden-fixture-js/index.json, the packument (the test serves it at
  npm/warden-fixture-js), naming the tarball npm/warden-fixture-js/-/warden-fixture-js-1.0.0.tgz
  by URL, sha1 and sha512 integrity; the tarball is written with tarfile (a `package/` root).
- gem (legacy source API): `gem build` of a gemspec, then `gem generate_index` over gems/,
  which writes gems/specs.4.8.gz, latest_specs.4.8.gz, prerelease_specs.4.8.gz and
  quick/Marshal.4.8/warden_fixture_rb-1.0.0.gemspec.rz beside gems/gems/*.gem. RubyGems 3.3
  first asks for the source's URL itself (HEAD gems/): a 200 would make it use the compact
  index (versions, info/NAME), so the test answers 404 there and it falls back to these.
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

VERSION = "1.0.0"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def wheel(out, value):
    dist = "warden_fixture_py-%s" % VERSION
    files = {
        "warden_fixture_py.py": ("VALUE = %r\n" % value).encode(),
        dist + ".dist-info/METADATA": (
            "Metadata-Version: 2.1\nName: warden-fixture-py\nVersion: %s\n"
            "Summary: a fixture of warden's tests\n" % VERSION
        ).encode(),
        dist + ".dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: warden-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
    record_name = dist + ".dist-info/RECORD"
    files[record_name] = (record + record_name + ",,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    whl = buf.getvalue()
    name = dist + "-py3-none-any.whl"
    write(os.path.join(out, "files", name), whl)
    link = '<a href="/files/%s#sha256=%s">%s</a>' % (name, hashlib.sha256(whl).hexdigest(), name)
    write(
        os.path.join(out, "simple", "warden-fixture-py", "index.html"),
        ("<!DOCTYPE html>\n<html><body>\n%s\n</body></html>\n" % link).encode(),
    )
    write(
        os.path.join(out, "simple", "index.html"),
        b'<!DOCTYPE html>\n<html><body>\n<a href="/simple/warden-fixture-py/">'
        b"warden-fixture-py</a>\n</body></html>\n",
    )


def npm(out, port, value):
    name = "warden-fixture-js"
    manifest = {"name": name, "version": VERSION, "main": "index.js", "license": "MIT"}
    files = {
        "package/package.json": json.dumps(manifest, indent=2).encode(),
        "package/index.js": ("module.exports = %s;\n" % json.dumps(value)).encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1577836800
            t.addfile(info, io.BytesIO(data))
    tgz = buf.getvalue()
    tarball = "%s-%s.tgz" % (name, VERSION)
    write(os.path.join(out, "npm", name, "-", tarball), tgz)
    dist = {
        "tarball": "http://127.0.0.1:%d/npm/%s/-/%s" % (port, name, tarball),
        "shasum": hashlib.sha1(tgz).hexdigest(),
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
    }
    packument = {
        "name": name,
        "dist-tags": {"latest": VERSION},
        "versions": {VERSION: dict(manifest, dist=dist)},
    }
    write(os.path.join(out, "npm", name, "index.json"), json.dumps(packument).encode())


def gem(out, value):
    name = "warden_fixture_rb"
    with tempfile.TemporaryDirectory() as src:
        write(
            os.path.join(src, "lib", name + ".rb"),
            ("module WardenFixtureRb\n  VALUE = %s\nend\n" % json.dumps(value)).encode(),
        )
        write(
            os.path.join(src, name + ".gemspec"),
            (
                "Gem::Specification.new do |s|\n"
                "  s.name = %r\n  s.version = %r\n"
                "  s.summary = 'a fixture of warden tests'\n  s.authors = ['warden']\n"
                "  s.license = 'MIT'\n  s.files = ['lib/%s.rb']\n"
                "  s.date = '2020-01-01'\nend\n" % (name, VERSION, name)
            ).encode(),
        )
        env = dict(os.environ, HOME=src, SOURCE_DATE_EPOCH="1577836800")
        subprocess.run(
            ["/usr/bin/gem", "build", name + ".gemspec"], cwd=src, env=env, check=True,
            stdout=subprocess.DEVNULL,
        )
        gems = os.path.join(out, "gems")
        os.makedirs(os.path.join(gems, "gems"), exist_ok=True)
        os.rename(
            os.path.join(src, "%s-%s.gem" % (name, VERSION)),
            os.path.join(gems, "gems", "%s-%s.gem" % (name, VERSION)),
        )
        subprocess.run(
            ["/usr/bin/gem", "generate_index", "--directory", gems], env=env, check=True,
            stdout=subprocess.DEVNULL,
        )


def main():
    out, port, value = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    wheel(out, value)
    npm(out, port, value)
    gem(out, value)


if __name__ == "__main__":
    main()
