import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHtml, isHtmlPage, reportHtml, reportTarget, webviewPage } from '../src/report';

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

const SERVER_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MLP</title>
<style>table { border: 0 }</style></head>
<body><svg viewBox="0 0 10 10"><style>.peak { fill: red }</style><rect class="peak"/></svg>
<script>document.title = 'sorted';</script><SCRIPT type="module">1</SCRIPT><script nonce="x">2</script></body></html>`;

test('the HTML report runs its own script and style elements only, nothing from the network', () => {
    const page = webviewPage(SERVER_PAGE, 'n0nce', 'https://webview.test');
    const policy = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(page)?.[1] ?? '';
    assert.match(policy, /^default-src 'none'; /);
    assert.match(policy, /script-src 'nonce-n0nce';/);
    assert.match(policy, /style-src https:\/\/webview\.test 'nonce-n0nce';/);
    assert.doesNotMatch(policy, /unsafe|connect-src|https?:\/\/(?!webview\.test)/);
    // The policy comes before the first element it governs.
    assert.ok(page.indexOf('Content-Security-Policy') < page.indexOf('<style'));
    assert.equal(page.match(/<style nonce="n0nce">/g)?.length, 2, 'the page\'s and the SVG\'s style elements');
    assert.equal(page.match(/<script nonce="n0nce">/g)?.length, 1);
    assert.match(page, /<SCRIPT nonce="n0nce" type="module">/);
    assert.match(page, /<script nonce="x">2/, 'a nonce of its own is left as it is');
    assert.doesNotMatch(page, /<(script|style)>/i);
});

test('a page without <head> gets one for the policy; a server message is not a page', () => {
    assert.match(webviewPage('<html><body><script>1</script></body></html>', 'n', 'c'),
        /^<html>\n<head><meta http-equiv="Content-Security-Policy"[^>]+><\/head><body><script nonce="n">/);
    assert.equal(isHtmlPage(SERVER_PAGE), true);
    assert.equal(isHtmlPage('  <html><body></body></html>'), true);
    assert.equal(isHtmlPage('no model named MLP'), false);
    assert.equal(isHtmlPage('the document is not open'), false);
});
