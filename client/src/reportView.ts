/**
 * `vramlint.showReport`: the report of the model at the cursor (or the code lens's model), in a
 * webview beside the editor, one per model, asked of the server that serves the document. With a
 * server that has `vramlint.reportHtml`, the page is its HTML report (the memory timeline's chart,
 * the sortable per-layer table) under a strict content security policy; else `vramlint report`'s
 * text. A page follows its document: after each analysis of it (the server's `vramlint/status`),
 * it is asked again and replaced in place (no new panel, no focus taken); a hidden page, when it
 * is shown again.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Uri, ViewColumn, window, type LogOutputChannel, type WebviewPanel } from 'vscode';
import { isHtmlPage, REPORT_HTML, reportHtml, reportTarget, SHOW_REPORT, webviewPage } from './report';
import { modelAt, type FileStatus, type ModelStatus } from './status';

/** The servers' commands, sent to the server of a document. */
export interface ReportSource {
    /** undefined when no server serves the document (yet). */
    execute(uri: string, command: string, args: unknown[]): Promise<unknown>;
    supports(uri: string, command: string): boolean;
    /** Whether the server of the document runs. */
    serves(uri: string): boolean;
}

interface Shown {
    readonly panel: WebviewPanel;
    readonly uri: string;
    readonly model: string;
    /** What the server last returned, and which command: the page is rebuilt only when it changes. */
    content?: { html: boolean; text: string };
    /** A newer analysis than the page, not asked for while the page was hidden. */
    stale: boolean;
    running: boolean;
    again: boolean;
    disposed: boolean;
}

export class ReportView {
    private readonly panels = new Map<string, Shown>();

    constructor(private readonly source: ReportSource, private readonly models: (uri: string) => ModelStatus[],
                private readonly log: LogOutputChannel) {}

    /** The command: `[uri, model]` from the code lens, else the model at the cursor. Returns the server's answer. */
    async show(args: unknown[]): Promise<string | undefined> {
        const target = reportTarget(args) ?? this.atCursor();
        if (target === undefined) {
            return undefined;
        }
        if (!this.source.serves(target.uri)) {
            void window.showWarningMessage('vramlint: the language server of this file is not running (vramlint: Show Logs).');
            return undefined;
        }
        const key = `${target.uri}#${target.model}`;
        let shown = this.panels.get(key);
        if (shown === undefined) {
            const panel = window.createWebviewPanel('vramlint.report', `vramlint: ${target.model}`,
                { viewColumn: ViewColumn.Beside, preserveFocus: true }, { enableScripts: false });
            const created: Shown = { panel, ...target, stale: true, running: false, again: false, disposed: false };
            shown = created;
            this.panels.set(key, created);
            panel.onDidDispose(() => {
                created.disposed = true;
                this.panels.delete(key);
            });
            panel.onDidChangeViewState(() => panel.visible && created.stale && void this.refresh(created));
        } else {
            shown.panel.reveal(undefined, true);
        }
        await this.refresh(shown);
        return shown.content?.text;
    }

    /** An analysis of a document ended: its pages are asked again (the hidden ones once shown). */
    onStatus(status: FileStatus): void {
        for (const shown of this.panels.values()) {
            if (shown.uri === status.uri) {
                shown.stale = true;
                if (shown.panel.visible) {
                    void this.refresh(shown);
                }
            }
        }
    }

    /** One request at a time per page; analyses that end meanwhile make one more. */
    private async refresh(shown: Shown): Promise<void> {
        if (shown.running) {
            shown.again = true;
            return;
        }
        shown.running = true;
        try {
            do {
                shown.again = false;
                shown.stale = false;
                await this.render(shown);
            } while (shown.again && !shown.disposed);
        } finally {
            shown.running = false;
        }
    }

    private async render(shown: Shown): Promise<void> {
        const content = await this.fetch(shown.uri, shown.model);
        if (content === undefined || shown.disposed
            || (shown.content?.html === content.html && shown.content.text === content.text)) {
            return;
        }
        shown.content = content;
        const webview = shown.panel.webview;
        // Scripts only for the server's HTML report, whose script and style elements carry the page's nonce.
        if (webview.options.enableScripts !== content.html) {
            webview.options = { enableScripts: content.html };
        }
        webview.html = content.html
            ? webviewPage(content.text, randomBytes(16).toString('hex'), webview.cspSource)
            : reportHtml(shown.model, path.basename(Uri.parse(shown.uri).fsPath), content.text, webview.cspSource);
    }

    /** The HTML report when the server has the command, else (or when it fails) the text report. */
    private async fetch(uri: string, model: string): Promise<{ html: boolean; text: string } | undefined> {
        try {
            if (this.source.supports(uri, REPORT_HTML)) {
                const html = await this.source.execute(uri, REPORT_HTML, [uri, model]);
                if (typeof html === 'string' && isHtmlPage(html)) {
                    return { html: true, text: html };
                }
            }
            const text = await this.source.execute(uri, SHOW_REPORT, [uri, model]);
            return typeof text === 'string' ? { html: false, text } : undefined;
        } catch (err) {
            this.log.warn(`the report of ${model}: ${String(err)}`);
            return undefined;
        }
    }

    private atCursor(): { uri: string; model: string } | undefined {
        const editor = window.activeTextEditor;
        if (editor === undefined || editor.document.languageId !== 'python') {
            void window.showInformationMessage('vramlint: open a Python file with a model to see its report.');
            return undefined;
        }
        const uri = editor.document.uri.toString();
        const model = modelAt(this.models(uri), editor.selection.active.line);
        if (model === undefined) {
            void window.showInformationMessage('vramlint: no model in this file (yet).');
            return undefined;
        }
        return { uri, model: model.name };
    }

    dispose(): void {
        for (const shown of this.panels.values()) {
            shown.panel.dispose();
        }
    }
}
