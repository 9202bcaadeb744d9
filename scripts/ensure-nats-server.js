// Finds the `nats-server` binary the NATS tests start, installing Debian's package when it is
// missing and we are root (CI). Used by scripts/test.js before jest and by the tests' own setup.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');

const KNOWN = ['/usr/bin/nats-server', '/usr/sbin/nats-server', '/usr/local/bin/nats-server'];

function locate() {
  if (process.env.NATS_SERVER_BIN && fs.existsSync(process.env.NATS_SERVER_BIN)) return process.env.NATS_SERVER_BIN;
  const r = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return KNOWN.find((p) => fs.existsSync(p));
}

/** The path of nats-server; throws with what to do when it is missing and cannot be installed. */
function ensureNatsServer(log = (s) => process.stderr.write(s + '\n')) {
  let bin = locate();
  if (bin) return bin;
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    log('nats-server not found: installing the Debian package (apt-get install -y nats-server)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const opts = { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 300_000 };
    execFileSync('apt-get', ['update'], opts);
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nats-server'], opts);
    bin = locate();
    if (bin) return bin;
  }
  throw new Error(
    'nats-server is not installed: run `apt-get install -y nats-server` as root (Debian package), ' +
      'or set NATS_SERVER_BIN to its path',
  );
}

module.exports = { ensureNatsServer };
