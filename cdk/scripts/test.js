// Compiles the tests (test/*.ts, against the jsii build in lib/) and runs them with Node's
// own test runner. `make cdk` runs it after the jsii build.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
fs.rmSync(path.join(root, 'test-out'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'test', 'tsconfig.json')], { stdio: 'inherit' });
const files = fs
  .readdirSync(path.join(root, 'test-out'))
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => path.join('test-out', f));
if (files.length === 0) {
  console.error('no test files in test-out/');
  process.exit(1);
}
execFileSync(process.execPath, ['--test', ...files], { stdio: 'inherit', cwd: root });
