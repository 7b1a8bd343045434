/**
 * The language status item: the active editor's model (the one at the cursor) with its training
 * memory against the GPU, from the server's `vramlint/status` notifications.
 */
import { Disposable, LanguageStatusSeverity, languages, window, type LanguageStatusItem, type TextEditor } from 'vscode';
import { SHOW_REPORT } from './report';
import { statusView, type FileStatus, type ModelStatus, type Severity } from './status';

const SEVERITY: Record<Severity, LanguageStatusSeverity> = {
    information: LanguageStatusSeverity.Information,
    warning: LanguageStatusSeverity.Warning,
    error: LanguageStatusSeverity.Error,
};

export class StatusItem implements Disposable {
    private readonly item: LanguageStatusItem;
    private readonly files = new Map<string, FileStatus>();
    private readonly disposables: Disposable[] = [];
    private problem: string | undefined;

    constructor() {
        this.item = languages.createLanguageStatusItem('vramlint.status', { language: 'python' });
        this.item.name = 'vramlint';
        this.disposables.push(
            this.item,
            window.onDidChangeActiveTextEditor(() => this.render()),
            window.onDidChangeTextEditorSelection((e) => e.textEditor === window.activeTextEditor && this.render()),
        );
        this.render();
    }

    update(status: FileStatus): void {
        this.files.set(status.uri, status);
        this.render();
    }

    /** The models the server last reported for a document. */
    models(uri: string): ModelStatus[] {
        return this.files.get(uri)?.models ?? [];
    }

    starting(): void {
        this.problem = undefined;
        this.item.busy = true;
        this.render();
    }

    started(): void {
        this.item.busy = false;
        this.render();
    }

    /** The server is not running: say why, until it starts again. */
    failed(message: string): void {
        this.problem = message;
        this.item.busy = false;
        this.files.clear();
        this.render();
    }

    private render(editor: TextEditor | undefined = window.activeTextEditor): void {
        if (this.problem !== undefined) {
            this.item.text = 'vramlint: not running';
            this.item.detail = this.problem;
            this.item.severity = LanguageStatusSeverity.Error;
            this.item.command = { title: 'Show Logs', command: 'vramlint.showLogs' };
            return;
        }
        const status = editor ? this.files.get(editor.document.uri.toString()) : undefined;
        const view = statusView(status, editor?.selection.active.line);
        this.item.text = view.text;
        this.item.detail = view.detail;
        this.item.severity = SEVERITY[view.severity];
        this.item.command = view.model ? { title: 'Report', command: SHOW_REPORT } : undefined;
    }

    dispose(): void {
        Disposable.from(...this.disposables).dispose();
    }
}
