/**
 * The report's pages in a webview: the server's HTML report (`vramlint.reportHtml`: the memory
 * timeline's chart and the per-layer table) under a strict content security policy, or the
 * per-layer text (`vramlint.showReport`, `vramlint report`'s) of a server without it. Pure: no
 * `vscode` import.
 */

export const SHOW_REPORT = 'vramlint.showReport';
export const REPORT_HTML = 'vramlint.reportHtml';

/** The command's arguments as the code lens gives them: `[uri, modelName]`. */
export function reportTarget(args: unknown[]): { uri: string; model: string } | undefined {
    const [uri, model] = args;
    return typeof uri === 'string' && typeof model === 'string' ? { uri, model } : undefined;
}

export function reportHtml(model: string, file: string, text: string, cspSource: string): string {
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline';">
<title>vramlint: ${escapeHtml(model)}</title>
<style>
  body { color: var(--vscode-editor-foreground); background: var(--vscode-editor-background); }
  h1 { font-size: 1.2em; font-weight: 600; }
  .file { color: var(--vscode-descriptionForeground); }
  pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); line-height: 1.4; }
</style>
</head>
<body>
<h1>vramlint report: ${escapeHtml(model)} <span class="file">${escapeHtml(file)}</span></h1>
<pre id="report">${escapeHtml(text)}</pre>
</body>
</html>
`;
}

export function escapeHtml(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Whether the server's answer is an HTML page (else a message such as "the document is not open"). */
export function isHtmlPage(text: string): boolean {
    return /^\s*(<!DOCTYPE html|<html[\s>])/i.test(text);
}

/**
 * The server's self-contained HTML report as a webview's page: nothing from the network (no
 * `connect-src`, images only inline), and no script or style but the page's own elements, which
 * get the nonce (`nonce-...` in the policy); inline event handlers and `style` attributes do not
 * apply. `cspSource` lets the webview's own resources (VS Code's default styles) load.
 */
export function webviewPage(html: string, nonce: string, cspSource: string): string {
    const policy = [
        "default-src 'none'", `img-src ${cspSource} data:`, `font-src ${cspSource}`,
        `style-src ${cspSource} 'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`,
    ].join('; ');
    const meta = `<meta http-equiv="Content-Security-Policy" content="${policy};">`;
    // Every opening <script> and <style> tag (SVG's <style> included) that has no nonce of its own.
    const tagged = html.replace(/<(script|style)\b(?![^>]*\snonce=)/gi, (_whole, tag: string) => `<${tag} nonce="${nonce}"`);
    return withPolicy(tagged, meta);
}

/** The policy first in <head>, before anything it governs. */
function withPolicy(tagged: string, meta: string): string {
    if (/<head\b[^>]*>/i.test(tagged)) {
        return tagged.replace(/<head\b[^>]*>/i, (head) => `${head}\n${meta}`);
    }
    if (/<html\b[^>]*>/i.test(tagged)) {
        return tagged.replace(/<html\b[^>]*>/i, (tag) => `${tag}\n<head>${meta}</head>`);
    }
    return `${meta}\n${tagged}`;
}
