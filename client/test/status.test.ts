import assert from 'node:assert/strict';
import { test } from 'node:test';
import { count, fmtBytes, modelAt, statusView, type FileStatus, type ModelStatus } from '../src/status';

function model(name: string, line: number | null, extra: Partial<ModelStatus> = {}): ModelStatus {
    return {
        name, line, params: 131410, trainPeak: 70778880, inferencePeak: 35324928, deviceTotal: 943718400,
        deviceMemory: 85031714816, device: 'H100-80GB', batchSize: 256, fits: true, ...extra,
    };
}

const file: FileStatus = {
    uri: 'file:///ws/mlp.py', version: 1, errors: 0,
    models: [model('model', 8), model('MLP', 18, { trainPeak: null, deviceTotal: null, deviceMemory: null, fits: null }), model('make_mlp', 34)],
};

test('the model at the cursor: the last defined at or above it, else the first', () => {
    assert.equal(modelAt(file.models, 0)?.name, 'model');
    assert.equal(modelAt(file.models, 8)?.name, 'model');
    assert.equal(modelAt(file.models, 25)?.name, 'MLP');
    assert.equal(modelAt(file.models, 40)?.name, 'make_mlp');
    assert.equal(modelAt(file.models, undefined)?.name, 'model');
    assert.equal(modelAt([model('x', null)], 3)?.name, 'x');
    assert.equal(modelAt([], 3), undefined);
});

test('a model that fits: its training memory against the GPU', () => {
    assert.deepEqual(statusView(file, 10), {
        text: 'model: device total 900.0 MiB / 79.19 GiB', model: 'model', severity: 'information',
        detail: 'training peak 67.5 MiB; device total 900.0 MiB (with the CUDA context) on the H100-80GB; batch 256; 3 models in this file',
    });
});

test('a model over budget is a warning', () => {
    const over: FileStatus = { ...file, models: [model('GPT', 3, { deviceTotal: 30 * 2 ** 30, deviceMemory: 24 * 2 ** 30, fits: false, device: '24GiB' })] };
    const view = statusView(over, 5);
    assert.equal(view.text, 'GPT: device total 30.00 GiB / 24.00 GiB (does NOT fit)');
    assert.equal(view.severity, 'warning');
});

test('with mode = "infer": what inference needs, and whether that fits', () => {
    const infer: FileStatus = { ...file, models: [model('model', 3, { mode: 'infer', inferenceNeed: 900 * 2 ** 20, deviceMemory: 2 ** 30, fits: true })] };
    assert.deepEqual(statusView(infer, 5), {
        text: 'model: inference needs 900.0 MiB / 1.00 GiB', model: 'model', severity: 'information',
        detail: 'inference peak 33.7 MiB; 900.0 MiB with the CUDA context on the H100-80GB; batch 256',
    });
});

test('on several GPUs the figures are each GPU\'s, and say so', () => {
    const sharded: FileStatus = { ...file, models: [model('model', 3, { perGpu: 'per GPU, 8 ranks (fsdp2 full-shard)' })] };
    assert.deepEqual(statusView(sharded, 5), {
        text: 'model: device total 900.0 MiB per GPU / 79.19 GiB', model: 'model', severity: 'information',
        detail: 'per GPU, 8 ranks (fsdp2 full-shard); training peak 67.5 MiB; device total 900.0 MiB (with the CUDA ' +
            'context) on the H100-80GB; batch 256',
    });
});

test('no estimate, no model, no analysis', () => {
    assert.equal(statusView(file, 20).text, 'MLP: 131.4K params');
    assert.match(statusView(file, 20).detail, /needs inputs/);
    assert.equal(statusView({ ...file, models: [] }, 0).text, 'vramlint: no model');
    assert.equal(statusView(undefined, 0).detail, 'not analysed yet');
});

test('units as the server prints them', () => {
    assert.equal(fmtBytes(516 * 1024), '516.0 KiB');
    assert.equal(fmtBytes(85031714816), '79.19 GiB');
    assert.equal(fmtBytes(100), '100 B');
    assert.equal(fmtBytes(null), 'unknown');
    assert.equal(count(131410), '131.4K');
    assert.equal(count(124475904), '124.5M');
    assert.equal(count(7), '7');
    assert.equal(count(null), '?');
});
