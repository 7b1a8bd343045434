import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveVariables, serverSettings, type Vars } from '../src/settings';

const vars: Vars = { workspaceFolder: '/ws', userHome: '/home/me', env: { DATA: '/data' } };

function read(values: Record<string, unknown>) {
    return (key: string) => values[key];
}

test('defaults send no setup: the project and the code decide', () => {
    const defaults = {
        gpu: '', batchSize: null, precision: 'auto', optimizer: 'auto', mode: 'auto', extraPaths: [],
        'inlayHints.layers': true, 'inlayHints.shapes': true, codeLens: true,
        interpreter: [], importStrategy: 'fromEnvironment', 'trace.server': 'off',
    };
    assert.deepEqual(serverSettings(read(defaults), vars), {
        vramlint: { extraPaths: [], inlayHints: { layers: true, shapes: true }, codeLens: true },
    });
});

test('set values reach the server under its names; client-only settings do not', () => {
    const settings = serverSettings(read({
        gpu: ' RTX-4090 ', batchSize: 16, precision: 'amp-bf16', optimizer: 'adamw', mode: 'train',
        'inlayHints.layers': false, 'inlayHints.shapes': true, codeLens: false,
        interpreter: ['/usr/bin/python3'], importStrategy: 'useBundled', 'trace.server': 'verbose',
    }), vars);
    assert.deepEqual(settings, {
        vramlint: {
            gpu: 'RTX-4090', batchSize: 16, precision: 'amp-bf16', optimizer: 'adamw', mode: 'train',
            extraPaths: [], inlayHints: { layers: false, shapes: true }, codeLens: false,
        },
    });
});

test('a bad value goes as it is, for the server to report', () => {
    assert.equal(serverSettings(read({ batchSize: 0, gpu: 'no-such-card' }), vars).vramlint.batchSize, 0);
    assert.equal(serverSettings(read({ gpu: 'no-such-card' }), vars).vramlint.gpu, 'no-such-card');
});

test('extra paths: variables expanded, relative to the workspace folder', () => {
    const settings = serverSettings(read({ extraPaths: ['src', '${workspaceFolder}/lib', '~/models', '${env:DATA}/x', 3] }), vars);
    assert.deepEqual(settings.vramlint.extraPaths, ['/ws/src', '/ws/lib', '/home/me/models', '/data/x']);
});

test('variables', () => {
    assert.equal(resolveVariables('${userHome}/a', vars), '/home/me/a');
    assert.equal(resolveVariables('~', vars), '/home/me');
    assert.equal(resolveVariables('a~b', vars), 'a~b');
    assert.equal(resolveVariables('${env:NOPE}x', vars), 'x');
    assert.equal(resolveVariables('${workspaceFolder}/x', { userHome: '/h', env: {} }), '${workspaceFolder}/x');
});
