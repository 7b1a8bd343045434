import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLIENT_SETTINGS, RESTART_SETTINGS, resolveVariables, serverSettings, type Vars } from '../src/settings';

const vars: Vars = { workspaceFolder: '/ws', userHome: '/home/me', env: { DATA: '/data' } };

interface Property {
    type: string | string[];
    default?: unknown;
    enum?: unknown[];
    minimum?: number;
    items?: { type: string };
}

/** The settings the manifest declares (package.json at the repository's root). */
const declared = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, Property> } };
}).contributes.configuration.properties;
const keys = Object.keys(declared).map((name) => name.replace(/^vramlint\./, ''));
const serverKeys = keys.filter((key) => !CLIENT_SETTINGS.includes(key));

function read(values: Record<string, unknown>) {
    return (key: string) => values[key];
}

function settingsOf(values: Record<string, unknown>) {
    return serverSettings(read(values), vars, declared).vramlint;
}

/** The value at a dotted key of the section the server gets. */
function at(section: Record<string, unknown>, key: string): unknown {
    return key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], section);
}

/** A value of the declared type other than the default, as a user might set it. */
function sample(p: Property): unknown {
    const types = Array.isArray(p.type) ? p.type : [p.type];
    if (p.enum) {
        return p.enum.find((v) => v !== p.default);
    }
    if (types.includes('boolean')) {
        return p.default !== true;
    }
    if (types.includes('integer')) {
        return (p.minimum ?? 0) + 7;
    }
    if (types.includes('string')) {
        return 'RTX-4090';
    }
    if (types.includes('array')) {
        return p.items?.type === 'string' ? ['src'] : [{ shape: [3, 32, 32], dtype: 'float16' }];
    }
    throw new Error(`no sample for type ${String(p.type)}`);
}

test('every setting the manifest declares reaches the server, under its name, but the client\'s own', () => {
    assert.ok(serverKeys.length >= 12, serverKeys.join(', '));
    for (const key of ['checkpointing', 'maxLayerParams', 'inputs']) {
        assert.ok(serverKeys.includes(key), `${key} is declared`);
    }
    const values = Object.fromEntries(keys.map((key) => [key, sample(declared[`vramlint.${key}`])]));
    const section = settingsOf(values);
    for (const key of serverKeys) {
        const expected = key === 'extraPaths' ? ['/ws/src'] : values[key];
        assert.deepEqual(at(section, key), expected, `vramlint.${key}`);
    }
    for (const key of CLIENT_SETTINGS) {
        assert.ok(keys.includes(key), `${key} is declared`);
        assert.equal(at(section, key), undefined, `${key} stays in the client`);
    }
    assert.ok(RESTART_SETTINGS.every((name) => CLIENT_SETTINGS.includes(name.replace(/^vramlint\./, ''))));
});

test('defaults send nothing: the project, the code and the server\'s defaults decide', () => {
    const defaults = Object.fromEntries(keys.map((key) => [key, declared[`vramlint.${key}`].default]));
    assert.equal(defaults.precision, 'auto');
    assert.deepEqual(settingsOf(defaults), {});
    assert.deepEqual(settingsOf({}), {});
    assert.deepEqual(settingsOf({ gpu: '  ', batchSize: null, inputs: [], checkpointing: null }), {});
});

test('set values reach the server under its names; client-only settings do not', () => {
    const settings = settingsOf({
        gpu: ' RTX-4090 ', batchSize: 16, precision: 'amp-bf16', optimizer: 'adamw', mode: 'train',
        checkpointing: false, maxLayerParams: 1000, inputs: [{ shape: [3, 224, 224] }],
        'inlayHints.layers': false, 'inlayHints.shapes': true, codeLens: false,
        interpreter: ['/usr/bin/python3'], importStrategy: 'useBundled', 'trace.server': 'verbose',
    });
    assert.deepEqual(settings, {
        gpu: 'RTX-4090', batchSize: 16, precision: 'amp-bf16', optimizer: 'adamw', mode: 'train',
        checkpointing: false, maxLayerParams: 1000, inputs: [{ shape: [3, 224, 224] }],
        inlayHints: { layers: false }, codeLens: false,
    });
});

test('a bad value goes as it is, for the server to report', () => {
    assert.equal(settingsOf({ batchSize: 0, gpu: 'no-such-card' }).batchSize, 0);
    assert.equal(settingsOf({ gpu: 'no-such-card' }).gpu, 'no-such-card');
    assert.equal(settingsOf({ checkpointing: 'yes' }).checkpointing, 'yes');
});

test('extra paths: variables expanded, relative to the workspace folder', () => {
    const settings = settingsOf({ extraPaths: ['src', '${workspaceFolder}/lib', '~/models', '${env:DATA}/x', 3] });
    assert.deepEqual(settings.extraPaths, ['/ws/src', '/ws/lib', '/home/me/models', '/data/x']);
});

test('variables', () => {
    assert.equal(resolveVariables('${userHome}/a', vars), '/home/me/a');
    assert.equal(resolveVariables('~', vars), '/home/me');
    assert.equal(resolveVariables('a~b', vars), 'a~b');
    assert.equal(resolveVariables('${env:NOPE}x', vars), 'x');
    assert.equal(resolveVariables('${workspaceFolder}/x', { userHome: '/h', env: {} }), '${workspaceFolder}/x');
});
