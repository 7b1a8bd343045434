/**
 * `vramlint.showReport`: the per-layer report of the model at the cursor (or the code lens's
 * model), in a webview beside the editor. The language client registers the command for the
 * server's `vramlint.showReport` (it returns the text); this middleware gives it its arguments
 * when it comes from the command palette or the status item, and shows what it returns.
 */
import * as path from 'node:path';
import { Uri, ViewColumn, window, type WebviewPanel } from 'vscode';
import type { ExecuteCommandSignature } from 'vscode-languageclient/node';
import { reportHtml, reportTarget, SHOW_REPORT } from './report';
import { modelAt, type ModelStatus } from './status';

export class ReportView {
    private readonly panels = new Map<string, WebviewPanel>();

    constructor(private readonly models: (uri: string) => ModelStatus[]) {}

    /** The language client's `executeCommand` middleware. */
    readonly middleware = async (command: string, args: unknown[], next: ExecuteCommandSignature): Promise<unknown> => {
        if (command !== SHOW_REPORT) {
            return next(command, args);
        }
        const target = reportTarget(args) ?? this.atCursor();
        if (target === undefined) {
            return undefined;
        }
        const text: unknown = await next(command, [target.uri, target.model]);
        if (typeof text === 'string') {
            this.show(target.uri, target.model, text);
        }
        return text;
    };

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

    private show(uri: string, model: string, text: string): void {
        const key = `${uri}#${model}`;
        let panel = this.panels.get(key);
        if (panel === undefined) {
            panel = window.createWebviewPanel('vramlint.report', `vramlint: ${model}`,
                { viewColumn: ViewColumn.Beside, preserveFocus: true }, { enableScripts: false });
            this.panels.set(key, panel);
            panel.onDidDispose(() => this.panels.delete(key));
        } else {
            panel.reveal(undefined, true);
        }
        panel.webview.html = reportHtml(model, path.basename(Uri.parse(uri).fsPath), text, panel.webview.cspSource);
    }

    dispose(): void {
        for (const panel of this.panels.values()) {
            panel.dispose();
        }
    }
}
