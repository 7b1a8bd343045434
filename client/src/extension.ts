/** vramlint in VS Code: the language client of `vramlint lsp`, its log, its status item, its commands. */
import { commands, window, workspace, type ExtensionContext } from 'vscode';
import { onSelectedInterpreterChange } from './python';
import { Server } from './server';
import { StatusItem } from './statusItem';

let server: Server | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
    const log = window.createOutputChannel('vramlint', { log: true });
    const status = new StatusItem();
    server = new Server(context, log, status);
    const s = server;
    context.subscriptions.push(
        log, status, s,
        commands.registerCommand('vramlint.restart', () => s.restart()),
        commands.registerCommand('vramlint.showLogs', () => log.show()),
        workspace.onDidChangeConfiguration((e) => s.onConfigurationChange(e)),
        await onSelectedInterpreterChange(() => {
            if (workspace.getConfiguration('vramlint', workspace.workspaceFolders?.[0]?.uri).get<string[]>('interpreter', []).length === 0) {
                log.info('the interpreter selected in the Python extension changed: restarting the server');
                void s.restart();
            }
        }, log),
    );
    // The server's commands (vramlint.showReport) exist once it has started.
    await s.start();
}

export async function deactivate(): Promise<void> {
    await server?.stop();
}
