import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
    chooseInterpreter, diagnose, importStrategy, installCommand, parseProbe, serverLaunch, shellQuote,
    type Bundle, type Interpreter, type Probe,
} from '../src/interpreter';
import type { Vars } from '../src/settings';

const vars: Vars = { workspaceFolder: '/ws', userHome: '/home/me', env: {} };
const venv: Interpreter = { argv: ['/ws/.venv/bin/python'], source: 'vramlint.interpreter' };
const probe: Probe = { python: '3.11', platform: 'linux-x86_64', executable: '/ws/.venv/bin/python', vramlint: '0.1.0', error: null };
const bundle: Bundle = { python: '3.11', platform: 'linux-x86_64', vramlint: '0.1.0' };

test('the setting wins, then the Python extension, then python3 on PATH', () => {
    assert.deepEqual(chooseInterpreter(['${workspaceFolder}/.venv/bin/python'], ['/usr/bin/python3.12'], vars),
        { argv: ['/ws/.venv/bin/python'], source: 'vramlint.interpreter' });
    assert.deepEqual(chooseInterpreter(['conda', 'run', '-n', 'ml', 'python'], undefined, vars).argv,
        ['conda', 'run', '-n', 'ml', 'python']);
    assert.deepEqual(chooseInterpreter('~/py/bin/python', undefined, vars).argv, ['/home/me/py/bin/python']);
    assert.deepEqual(chooseInterpreter([], ['/usr/bin/python3.12'], vars),
        { argv: ['/usr/bin/python3.12'], source: 'the Python extension' });
    assert.deepEqual(chooseInterpreter([''], [], vars), { argv: ['python3'], source: 'PATH' });
    assert.deepEqual(chooseInterpreter(undefined, undefined, vars), { argv: ['python3'], source: 'PATH' });
});

test('import strategy: fromEnvironment unless useBundled', () => {
    assert.equal(importStrategy('useBundled'), 'useBundled');
    assert.equal(importStrategy('fromEnvironment'), 'fromEnvironment');
    assert.equal(importStrategy(undefined), 'fromEnvironment');
});

test('the server command; useBundled puts the bundled libraries first on the path', () => {
    const conda: Interpreter = { argv: ['conda', 'run', '-n', 'ml', 'python'], source: 'vramlint.interpreter' };
    const env = { PATH: '/bin', PYTHONPATH: '/mine' };
    const plain = serverLaunch(conda, 'fromEnvironment', '/ext/bundled/libs', env);
    assert.equal(plain.command, 'conda');
    assert.deepEqual(plain.args, ['run', '-n', 'ml', 'python', '-m', 'vramlint', 'lsp']);
    assert.equal(plain.env.PYTHONPATH, '/mine');
    assert.equal(serverLaunch(venv, 'useBundled', '/ext/bundled/libs', env).env.PYTHONPATH, '/ext/bundled/libs:/mine');
    assert.equal(serverLaunch(venv, 'useBundled', '/ext/bundled/libs', { PATH: '/bin' }).env.PYTHONPATH, '/ext/bundled/libs');
});

test('a working interpreter with vramlint: no problem', () => {
    assert.equal(diagnose(venv, 'fromEnvironment', probe, undefined, undefined), undefined);
    assert.equal(diagnose(venv, 'useBundled', probe, undefined, bundle), undefined);
});

test('vramlint missing: the message gives the command that installs it', () => {
    const problem = diagnose(venv, 'fromEnvironment', { ...probe, vramlint: null, error: "ModuleNotFoundError: No module named 'vramlint'" }, undefined, undefined);
    assert.equal(problem?.kind, 'not-installed');
    assert.equal(problem?.install, '/ws/.venv/bin/python -m pip install /path/to/vramlint');
    assert.match(problem?.message ?? '', /vramlint is not installed in the Python environment of "\/ws\/.venv\/bin\/python" \(from vramlint.interpreter\)/);
    assert.match(problem?.message ?? '', /Install it from a checkout of the vramlint repository \(or a wheel built from one\) with: \/ws\/.venv\/bin\/python -m pip install \/path\/to\/vramlint$/);
});

test('an interpreter that does not run, or is too old', () => {
    const missing = diagnose({ argv: ['python3'], source: 'PATH' }, 'fromEnvironment', undefined, 'spawn python3 ENOENT', undefined);
    assert.equal(missing?.kind, 'no-interpreter');
    assert.match(missing?.message ?? '', /cannot run the Python interpreter "python3" \(from PATH\): spawn python3 ENOENT/);
    assert.equal(diagnose(venv, 'fromEnvironment', { ...probe, python: '3.9' }, undefined, undefined)?.kind, 'old-python');
    assert.equal(diagnose(venv, 'fromEnvironment', { ...probe, python: '3.10' }, undefined, undefined), undefined);
});

test('useBundled without a bundle, or with one for another Python', () => {
    assert.equal(diagnose(venv, 'useBundled', probe, undefined, undefined)?.kind, 'no-bundle');
    const other = diagnose(venv, 'useBundled', { ...probe, python: '3.12' }, undefined, bundle);
    assert.equal(other?.kind, 'bundle-mismatch');
    assert.match(other?.message ?? '', /built for Python 3.11 on linux-x86_64; .* is Python 3.12 on linux-x86_64/);
});

test('shell quoting of the install command', () => {
    assert.equal(shellQuote('/a/b-c_d.e'), '/a/b-c_d.e');
    assert.equal(shellQuote('/my env/python'), `'/my env/python'`);
    assert.equal(shellQuote(`it's`), `'it'\\''s'`);
    assert.equal(installCommand({ argv: ['/my env/python'], source: 'PATH' }), `'/my env/python' -m pip install /path/to/vramlint`);
});

test('the probe answer is the last line of JSON', () => {
    assert.deepEqual(parseProbe(`warning\n${JSON.stringify(probe)}\n`), probe);
    assert.equal(parseProbe('Traceback ...'), undefined);
    assert.equal(parseProbe('{"python": 3}'), undefined);
});
