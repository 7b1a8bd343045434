/**
 * The language status item: the active editor's model (the one at the cursor) with its training
 * memory against the GPU, from the `vramlint/status` notifications of the server that serves the
 * document (one per workspace folder: a folder whose server does not run says so, the others not).
 * A language status item's text shows only in the `{}` hover (or pinned), so the model at the
 * cursor is also a status bar item of its own, shown while the cursor is in a file with a model
 * (a click opens its report; the status bar's context menu hides it, as any item).
 */
import {
    Disposable, LanguageStatusSeverity, languages, StatusBarAlignment, ThemeColor, Uri, window,
    type LanguageStatusItem, type StatusBarItem, type TextEditor,
} from 'vscode';
import { SHOW_REPORT } from './report';
import { statusView, type FileStatus, type ModelStatus, type Severity } from './status';

const SEVERITY: Record<Severity, LanguageStatusSeverity> = {
    information: LanguageStatusSeverity.Information,
    warning: LanguageStatusSeverity.Warning,
    error: LanguageStatusSeverity.Error,
};

export class StatusItem implements Disposable {
    private readonly item: LanguageStatusItem;
    private readonly bar: StatusBarItem;
    private readonly files = new Map<string, FileStatus>();
    private readonly disposables: Disposable[] = [];
    /** Why a server is not running, by server (servers.ts's keys). */
    private readonly problems = new Map<string, string>();
    private readonly busy = new Set<string>();

    /** `owner`: the key of the server that serves a document. */
    constructor(private readonly owner: (uri: Uri) => string) {
        this.item = languages.createLanguageStatusItem('vramlint.status', { language: 'python' });
        this.item.name = 'vramlint';
        this.bar = window.createStatusBarItem('vramlint.model', StatusBarAlignment.Right, 100);
        this.bar.name = 'vramlint: the model at the cursor';
        this.disposables.push(
            this.item,
            this.bar,
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

    starting(server: string): void {
        this.problems.delete(server);
        this.busy.add(server);
        this.render();
    }

    started(server: string): void {
        this.busy.delete(server);
        this.render();
    }

    /** A server is not running: say why on its documents, until it starts again. */
    failed(server: string, message: string): void {
        this.problems.set(server, message);
        this.busy.delete(server);
        this.forget(server);
    }

    /** A server stopped for good (its folder left the workspace): its documents' figures go. */
    forget(server: string): void {
        for (const [uri, status] of this.files) {
            if (this.owner(Uri.parse(uri)) === server) {
                this.files.delete(status.uri);
            }
        }
        this.render();
    }

    private render(editor: TextEditor | undefined = window.activeTextEditor): void {
        const server = editor ? this.owner(editor.document.uri) : undefined;
        const problem = server !== undefined ? this.problems.get(server) : undefined;
        this.item.busy = server !== undefined && this.busy.has(server);
        if (problem !== undefined) {
            this.item.text = 'vramlint: not running';
            this.item.detail = problem;
            this.item.severity = LanguageStatusSeverity.Error;
            this.item.command = { title: 'Show Logs', command: 'vramlint.showLogs' };
            this.bar.hide();
            return;
        }
        const status = editor ? this.files.get(editor.document.uri.toString()) : undefined;
        const view = statusView(status, editor?.selection.active.line);
        this.item.text = view.text;
        this.item.detail = view.detail;
        this.item.severity = SEVERITY[view.severity];
        this.item.command = view.model ? { title: 'Report', command: SHOW_REPORT } : undefined;
        if (view.model === undefined) {
            this.bar.hide();
            return;
        }
        this.bar.text = `$(chip) ${view.text}`;
        this.bar.tooltip = `vramlint: ${view.detail}`;
        this.bar.accessibilityInformation = { label: `vramlint ${view.text}`, role: 'button' };
        this.bar.command = { title: 'Show Memory Report', command: SHOW_REPORT };
        this.bar.backgroundColor = view.severity === 'information' ? undefined : new ThemeColor('statusBarItem.warningBackground');
        this.bar.show();
    }

    dispose(): void {
        Disposable.from(...this.disposables).dispose();
    }
}
