import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHtml, reportHtml, reportTarget } from '../src/report';

test('the code lens gives [uri, model]; anything else asks for the model at the cursor', () => {
    assert.deepEqual(reportTarget(['file:///ws/mlp.py', 'MLP']), { uri: 'file:///ws/mlp.py', model: 'MLP' });
    assert.equal(reportTarget([]), undefined);
    assert.equal(reportTarget(['file:///ws/mlp.py']), undefined);
});

test('the report page escapes the text and allows no script', () => {
    const html = reportHtml('Net<T>', 'net.py', 'layer | type\nfc1 | Linear <x> & "y"', 'vscode-resource:');
    assert.match(html, /<pre id="report">layer \| type\nfc1 \| Linear &lt;x&gt; &amp; &quot;y&quot;<\/pre>/);
    assert.match(html, /vramlint report: Net&lt;T&gt;/);
    assert.match(html, /default-src 'none'/);
    assert.doesNotMatch(html, /<script/);
    assert.equal(escapeHtml(`'`), '&#39;');
});
