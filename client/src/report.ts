/**
 * The per-layer report (`vramlint.showReport`, the server's `vramlint report` text) as the page of
 * a webview. Pure: no `vscode` import.
 */

export const SHOW_REPORT = 'vramlint.showReport';

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
