#!/usr/bin/env python3
# lago's TemplateStore.download (lago 7deae75), its lock protocol exactly, for tests of a store that lago and templates share.
#
# lago's utils.LockFile: open(path, 'w+'), chmod 0660, fcntl.flock(fd, LOCK_EX) blocking with no timeout, the file never
# removed. Under it, download() checks that the image is still missing, writes .metadata, downloads into <entry>.tmp,
# checks the SHA-1, writes .hash, and converts with qemu-img straight into the final path (visible while it is written).
#
#   lago-store.py fetch STORE NAME URL [--chunk-delay S] [--convert-delay S]
#       URL is the image's URL (http:// or a path); URL.hash and URL.metadata beside it, as lago's providers read them.
#       --chunk-delay sleeps after each 64 KiB of the download; --convert-delay sleeps with the final image half-written.
#   lago-store.py hold STORE NAME SECONDS
#       takes the entry's lock as lago does and holds it.
# Prints one line per step on stdout (waiting, locked, exists | downloading, converting, done) for the test to follow.
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request


def say(word):
    print(word, flush=True)


class LockFile:
    """lago.utils.LockFile, as lago takes it."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        self.fd = open(self.path, 'w+')
        os.chmod(self.path, 0o660)
        say('waiting')
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        say('locked')
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()


def read_url(url):
    if url.startswith('http://'):
        with urllib.request.urlopen(url) as response:
            return response.read()
    with open(url, 'rb') as f:
        return f.read()


def fetch(store, name, url, chunk_delay, convert_delay):
    dest = os.path.join(store, name)
    temp_dest = '%s.tmp' % dest
    with LockFile(dest + '.lock'):
        # Image was downloaded while we were waiting
        if os.path.exists(dest):
            say('exists')
            return 0
        with open('%s.metadata' % dest, 'w') as f:
            json.dump(json.loads(read_url(url + '.metadata')), f)
        say('downloading')
        sha1 = hashlib.sha1()
        source = urllib.request.urlopen(url) if url.startswith('http://') else open(url, 'rb')
        with source, open(temp_dest, 'wb') as out:
            while True:
                chunk = source.read(65536)
                if not chunk:
                    break
                out.write(chunk)
                sha1.update(chunk)
                if chunk_delay:
                    time.sleep(chunk_delay)
        expected = read_url(url + '.hash').decode().strip()
        if expected != sha1.hexdigest():
            raise RuntimeError('Image %s does not match the expected hash %s' % (name, sha1.hexdigest()))
        with open('%s.hash' % dest, 'w') as f:
            f.write(sha1.hexdigest())
        say('converting')
        if convert_delay:
            # qemu-img writing the final path: the image is there, half of it written, while the lock is held.
            size = os.path.getsize(temp_dest)
            with open(temp_dest, 'rb') as src, open(dest, 'wb') as out:
                out.write(src.read(size // 2))
                out.flush()
                time.sleep(convert_delay)
        result = subprocess.run(['qemu-img', 'convert', '-O', 'raw', temp_dest, dest])
        os.unlink(temp_dest)
        if result.returncode:
            raise RuntimeError('qemu-img failed')
    say('done')
    return 0


def hold(store, name, seconds):
    with LockFile(os.path.join(store, name) + '.lock'):
        time.sleep(seconds)
    say('released')
    return 0


def main(argv):
    options = {'--chunk-delay': 0.0, '--convert-delay': 0.0}
    words = []
    i = 0
    while i < len(argv):
        if argv[i] in options:
            options[argv[i]] = float(argv[i + 1])
            i += 2
        else:
            words.append(argv[i])
            i += 1
    if words[0] == 'fetch':
        return fetch(words[1], words[2], words[3], options['--chunk-delay'], options['--convert-delay'])
    if words[0] == 'hold':
        return hold(words[1], words[2], float(words[3]))
    raise SystemExit('usage: lago-store.py fetch STORE NAME URL | hold STORE NAME SECONDS')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
