/** vramlint in VS Code: the language clients of `vramlint lsp` (one per workspace folder), its log, its status item, its commands. */
import { commands, window, type ExtensionContext } from 'vscode';
import { onSelectedInterpreterChange } from './python';
import { serverKey, Servers } from './servers';
import { StatusItem } from './statusItem';

let servers: Servers | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
    const log = window.createOutputChannel('vramlint', { log: true });
    const status = new StatusItem(serverKey);
    servers = new Servers(context, log, status);
    const s = servers;
    context.subscriptions.push(
        log, status, s, ...s.register(),
        commands.registerCommand('vramlint.showLogs', () => log.show()),
        await onSelectedInterpreterChange((folder) => s.onSelectedInterpreterChange(folder), log),
    );
    await s.start();
}

export async function deactivate(): Promise<void> {
    await servers?.stop();
}
