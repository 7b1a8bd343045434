/**
 * The window's language servers: one per outermost workspace folder, each with its folder's
 * settings, started when the folder's first Python document opens (a folder without one costs
 * nothing), stopped when the folder leaves the workspace; one default server for the Python
 * documents outside every folder. The pattern of Microsoft's lsp-multi-server-sample; which server
 * serves a document is folders.ts. The servers' commands are registered here, once, and sent to
 * the server of the document they name.
 */
import {
    commands, Uri, workspace, type Disposable, type ExtensionContext, type LogOutputChannel, type TextDocument,
    type WorkspaceFolder, type WorkspaceFoldersChangeEvent,
} from 'vscode';
import { DEFAULT_KEY, folderChange, ownerOf } from './folders';
import { SHOW_REPORT } from './report';
import { ReportView, type ReportSource } from './reportView';
import { Server } from './server';
import type { FileStatus } from './status';
import type { StatusItem } from './statusItem';

/** The key of the server that serves a document: its outermost workspace folder's URI, else DEFAULT_KEY. */
export function serverKey(uri: Uri): string {
    const folder = workspace.getWorkspaceFolder(uri); // VS Code's containment (case-insensitive file systems)
    return folder === undefined ? DEFAULT_KEY : ownerOf(folder.uri.toString(), folderUris());
}

function folderUris(): string[] {
    return (workspace.workspaceFolders ?? []).map((f) => f.uri.toString());
}

function folderOf(key: string): WorkspaceFolder | undefined {
    return workspace.workspaceFolders?.find((f) => f.uri.toString() === key);
}

export class Servers implements Disposable, ReportSource {
    private readonly servers = new Map<string, Server>();
    private readonly report: ReportView;
    private folders = folderUris();

    constructor(private readonly context: ExtensionContext, private readonly log: LogOutputChannel,
                private readonly status: StatusItem) {
        this.report = new ReportView(this, (uri) => status.models(uri), log);
    }

    /** The commands and events the servers follow. */
    register(): Disposable[] {
        return [
            commands.registerCommand('vramlint.restart', () => this.restart()),
            commands.registerCommand(SHOW_REPORT, (...args: unknown[]) => this.report.show(args)),
            workspace.onDidOpenTextDocument((doc) => void this.ensure(doc)),
            workspace.onDidChangeWorkspaceFolders((e) => void this.onFoldersChange(e)),
            workspace.onDidChangeConfiguration((e) => this.servers.forEach((s) => s.onConfigurationChange(e))),
        ];
    }

    /** Starts the servers of the open Python documents. */
    async start(): Promise<void> {
        await Promise.all(workspace.textDocuments.map((doc) => this.ensure(doc)));
    }

    /** `vramlint.restart`: every server stops; those the open documents need start again. */
    async restart(): Promise<void> {
        const running = [...this.servers.values()];
        this.servers.clear();
        await Promise.all(running.map((s) => s.stop()));
        await this.start();
    }

    async stop(): Promise<void> {
        const running = [...this.servers.values()];
        this.servers.clear();
        await Promise.all(running.map((s) => s.stop()));
    }

    /** The interpreter selected in the Python extension changed, for a folder (or all). */
    onSelectedInterpreterChange(folder: WorkspaceFolder | undefined): void {
        for (const server of this.servers.values()) {
            const concerned = folder === undefined || server.scope.folder === undefined || server.scope.key === serverKey(folder.uri);
            if (concerned && server.followsSelectedInterpreter()) {
                this.log.info(`the interpreter selected in the Python extension changed: restarting the server of ${server.scope.folder?.name ?? 'the files outside the folders'}`);
                void server.restart();
            }
        }
    }

    /** ReportSource: a command of the server that serves `uri`. */
    async execute(uri: string, command: string, args: unknown[]): Promise<unknown> {
        return this.servers.get(serverKey(Uri.parse(uri)))?.execute(command, args);
    }

    supports(uri: string, command: string): boolean {
        return this.servers.get(serverKey(Uri.parse(uri)))?.supports(command) ?? false;
    }

    serves(uri: string): boolean {
        return this.servers.get(serverKey(Uri.parse(uri)))?.isRunning() ?? false;
    }

    private ensure(doc: TextDocument): Promise<void> {
        if (doc.languageId !== 'python' || doc.uri.scheme !== 'file') {
            return Promise.resolve();
        }
        const key = serverKey(doc.uri);
        if (this.servers.has(key)) {
            return Promise.resolve();
        }
        const outside = key === DEFAULT_KEY ? (uri: Uri) => serverKey(uri) === DEFAULT_KEY : undefined;
        const server = new Server(this.context, this.log, this.status, { key, folder: folderOf(key), outside },
            (status) => this.onStatus(status));
        this.servers.set(key, server);
        return server.start();
    }

    private onStatus(status: FileStatus): void {
        this.status.update(status);
        this.report.onStatus(status);
    }

    private async onFoldersChange(e: WorkspaceFoldersChangeEvent): Promise<void> {
        const after = folderUris();
        const change = folderChange([...this.servers.keys()], this.folders, after);
        this.folders = after;
        this.log.info(`workspace folders: ${e.added.length} added, ${e.removed.length} removed`);
        for (const key of change.stop) {
            const server = this.servers.get(key);
            this.servers.delete(key);
            await server?.stop();
            this.status.forget(key);
        }
        if (change.restartDefault) {
            await this.servers.get(DEFAULT_KEY)?.restart();
        }
        await this.start(); // the open documents of added folders, or of removed ones now outside every folder
    }

    dispose(): void {
        void this.stop();
        this.report.dispose();
    }
}
