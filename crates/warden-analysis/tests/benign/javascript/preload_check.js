// Warns when the dynamic loader injects a library into this process, and builds a copy of the
// environment without the loader's variables for whatever the caller starts next.
'use strict';

function injected() {
  const found = [];
  if (process.env.LD_PRELOAD) {
    found.push(['preload', process.env.LD_PRELOAD.split(':')]);
  }
  if ('LD_AUDIT' in process.env) {
    const audit = process.env['LD_AUDIT'];
    found.push(['audit', String(audit).split(':')]);
  }
  return found;
}

function sanitisedEnvironment() {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env['LD_AUDIT'];
  return env;
}

const preload = process.env.LD_PRELOAD || '';
for (const [name, libraries] of injected()) {
  console.error(`${name}: ${libraries.join(', ')}`);
}
if (!process.env.LD_AUDIT && preload === '') {
  console.log('no injected libraries');
}
module.exports = { injected, sanitisedEnvironment };
