import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contains, DEFAULT_KEY, folderChange, outermost, ownerOf } from '../src/folders';

const A = 'file:///ws/a';
const B = 'file:///ws/b';
const NESTED = 'file:///ws/a/lib';

test('a folder contains its files and subfolders, not a sibling that shares its prefix', () => {
    assert.equal(contains(A, 'file:///ws/a/mlp.py'), true);
    assert.equal(contains(A, 'file:///ws/a/deep/er/mlp.py'), true);
    assert.equal(contains(A, A), true);
    assert.equal(contains(A, 'file:///ws/ab/mlp.py'), false);
    assert.equal(contains(A, 'file:///ws/mlp.py'), false);
    assert.equal(contains('file:///ws/a/', 'file:///ws/a/mlp.py'), true);
});

test('each document goes to the server of the outermost folder that holds it', () => {
    const folders = [A, B];
    assert.equal(ownerOf('file:///ws/a/mlp.py', folders), A);
    assert.equal(ownerOf('file:///ws/b/sub/net.py', folders), B);
    assert.equal(ownerOf('file:///ws/ab/net.py', folders), DEFAULT_KEY);
    assert.equal(ownerOf('file:///tmp/loose.py', folders), DEFAULT_KEY);
    assert.equal(ownerOf('file:///tmp/loose.py', []), DEFAULT_KEY);
});

test('a nested folder is served by the outer folder, whichever comes first in the workspace', () => {
    assert.deepEqual(outermost([A, NESTED, B]), [A, B]);
    assert.deepEqual(outermost([NESTED, A]), [A]);
    assert.equal(ownerOf('file:///ws/a/lib/layers.py', [NESTED, A]), A);
    assert.equal(ownerOf('file:///ws/a/lib/layers.py', [NESTED]), NESTED);
});

test('folders removed or now nested stop their server; the default server restarts when the folders change', () => {
    assert.deepEqual(folderChange([A, B, DEFAULT_KEY], [A, B], [A]), { stop: [B], restartDefault: true });
    assert.deepEqual(folderChange([NESTED], [NESTED], [NESTED, A]), { stop: [NESTED], restartDefault: false });
    assert.deepEqual(folderChange([A], [A], [A, B]), { stop: [], restartDefault: false });
    assert.deepEqual(folderChange([A, DEFAULT_KEY], [A], [A]), { stop: [], restartDefault: false });
});
