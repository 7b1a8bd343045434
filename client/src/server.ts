/**
 * The language server's life: choose the interpreter, check that it can run vramlint (else say how
 * to install it), start `python -m vramlint lsp` with the settings, forward setting changes,
 * restart on demand.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import {
    commands, env, window, workspace, type ConfigurationChangeEvent, type Disposable, type ExtensionContext,
    type LogOutputChannel, type WorkspaceFolder,
} from 'vscode';
import {
    DidChangeConfigurationNotification, LanguageClient, RevealOutputChannelOn, State, type LanguageClientOptions,
    type ServerOptions,
} from 'vscode-languageclient/node';
import {
    CHECKOUT_PLACEHOLDER, chooseInterpreter, diagnose, importStrategy, parseProbe, pythonEnv, PROBE, serverLaunch, type Bundle,
    type ImportStrategy, type Interpreter, type Probe, type Problem,
} from './interpreter';
import { selectedInterpreter } from './python';
import { ReportView } from './reportView';
import { RESTART_SETTINGS, serverSettings, type Declared, type Vars } from './settings';
import { STATUS_METHOD, type FileStatus } from './status';
import type { StatusItem } from './statusItem';

const PROBE_TIMEOUT_MS = 30_000;

export class Server implements Disposable {
    private client: LanguageClient | undefined;
    private readonly report: ReportView;
    private queue: Promise<void> = Promise.resolve();

    constructor(private readonly context: ExtensionContext, private readonly log: LogOutputChannel,
                private readonly status: StatusItem) {
        this.report = new ReportView((uri) => status.models(uri));
    }

    /** Start, stop and restart run one after the other. */
    start(): Promise<void> {
        return this.serial(() => this.doStart());
    }

    restart(): Promise<void> {
        return this.serial(async () => {
            await this.doStop();
            await this.doStart();
        });
    }

    stop(): Promise<void> {
        return this.serial(() => this.doStop());
    }

    onConfigurationChange(e: ConfigurationChangeEvent): void {
        if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s))) {
            this.log.info('the interpreter settings changed: restarting the server');
            void this.restart();
        } else if (e.affectsConfiguration('vramlint') && this.client?.isRunning()) {
            void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: this.settings() });
        }
    }

    private serial(step: () => Promise<void>): Promise<void> {
        this.queue = this.queue.then(step, step);
        return this.queue;
    }

    private folder(): WorkspaceFolder | undefined {
        return workspace.workspaceFolders?.[0];
    }

    private vars(): Vars {
        return { workspaceFolder: this.folder()?.uri.fsPath, userHome: os.homedir(), env: process.env };
    }

    /** The settings of the first workspace folder (one server serves the window), as the server reads them. */
    private settings(): ReturnType<typeof serverSettings> {
        const config = workspace.getConfiguration('vramlint', this.folder()?.uri);
        const manifest = this.context.extension.packageJSON as { contributes: { configuration: { properties: Record<string, Declared> } } };
        return serverSettings((key) => config.get(key), this.vars(), manifest.contributes.configuration.properties);
    }

    private async doStart(): Promise<void> {
        this.status.starting();
        const folder = this.folder();
        const config = workspace.getConfiguration('vramlint', folder?.uri);
        const interp = chooseInterpreter(config.get('interpreter'), await selectedInterpreter(folder?.uri, this.log), this.vars());
        const strategy = importStrategy(config.get('importStrategy'));
        const libs = this.context.asAbsolutePath('bundled/libs');
        const bundle = strategy === 'useBundled' ? await readBundle(this.context.asAbsolutePath('bundled/bundle.json')) : undefined;
        this.log.info(`interpreter: ${interp.argv.join(' ')} (from ${interp.source}); import strategy: ${strategy}`);

        const { probe, error } = await runProbe(interp, strategy, libs, folder?.uri.fsPath);
        const problem = diagnose(interp, strategy, probe, error, bundle);
        if (problem !== undefined) {
            this.fail(problem, interp);
            return;
        }
        this.log.info(`Python ${probe?.python} (${probe?.executable}), vramlint ${probe?.vramlint}`);

        const launch = serverLaunch(interp, strategy, libs, process.env);
        const serverOptions: ServerOptions = {
            command: launch.command, args: launch.args, options: { env: launch.env, cwd: folder?.uri.fsPath },
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: 'file', language: 'python' }],
            outputChannel: this.log,
            traceOutputChannel: this.log,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: () => this.settings(),
            workspaceFolder: folder,
            middleware: {
                executeCommand: this.report.middleware,
                workspace: {
                    // The server pulls `vramlint` when a change notification carries no settings.
                    configuration: async (params, token, next) => {
                        const result = await next(params, token);
                        if (!Array.isArray(result)) {
                            return result;
                        }
                        return result.map((value: unknown, i) => params.items[i]?.section === 'vramlint' ? this.settings().vramlint : value);
                    },
                },
            },
        };
        const client = new LanguageClient('vramlint', 'vramlint', serverOptions, clientOptions);
        client.onNotification(STATUS_METHOD, (params: FileStatus) => this.status.update(params));
        client.onDidChangeState((e) => {
            // Stopped by itself (the language client gave up restarting a crashing server), not by us.
            if (e.newState === State.Stopped && this.client === client) {
                this.status.failed('the server stopped: see the log (vramlint: Show Logs), then vramlint: Restart Server');
            }
        });
        this.log.info(`starting: ${launch.command} ${launch.args.join(' ')}`);
        try {
            await client.start();
            this.client = client;
            this.status.started();
        } catch (err) {
            this.log.error(`the server did not start: ${String(err)}`);
            this.status.failed(`the server did not start: ${String(err)}`);
            void window.showErrorMessage(`vramlint: the language server did not start: ${String(err)}`, 'Show Logs')
                .then((choice) => choice && this.log.show());
        }
    }

    private async doStop(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (client !== undefined) {
            try {
                await client.stop(5000);
            } catch (err) {
                this.log.warn(`stopping the server: ${String(err)}`);
            }
        }
    }

    private fail(problem: Problem, interp: Interpreter): void {
        this.log.error(problem.message);
        this.status.failed(problem.message);
        const actions = problem.install ? ['Install in Terminal', 'Copy Command', 'Show Logs'] : ['Open Settings', 'Show Logs'];
        void window.showErrorMessage(problem.message, ...actions).then(async (choice) => {
            if (choice === 'Install in Terminal' && problem.install) {
                const terminal = window.createTerminal({ name: 'vramlint: install', cwd: this.folder()?.uri });
                terminal.show();
                // Not run: the command ends with a placeholder for the user's vramlint checkout.
                terminal.sendText(problem.install, false);
                void window.showInformationMessage(`vramlint: in the terminal, replace ${CHECKOUT_PLACEHOLDER} with the path of your ` +
                    `vramlint checkout (or wheel) and press Enter; once it is installed in ${interp.argv[0]}, restart the server.`, 'Restart Server')
                    .then((again) => again && this.restart());
            } else if (choice === 'Copy Command' && problem.install) {
                await env.clipboard.writeText(problem.install);
            } else if (choice === 'Open Settings') {
                await commands.executeCommand('workbench.action.openSettings', 'vramlint.interpreter');
            } else if (choice === 'Show Logs') {
                this.log.show();
            }
        });
    }

    dispose(): void {
        void this.stop();
        this.report.dispose();
    }
}

async function runProbe(interp: Interpreter, strategy: ImportStrategy, libs: string,
                        cwd: string | undefined): Promise<{ probe?: Probe; error?: string }> {
    return new Promise((resolve) => {
        execFile(interp.argv[0], [...interp.argv.slice(1), '-c', PROBE],
            { env: pythonEnv(strategy, libs, process.env), cwd, timeout: PROBE_TIMEOUT_MS },
            (err, stdout, stderr) => {
                const probe = parseProbe(stdout);
                resolve(probe ? { probe } : { error: err ? `${err.message.split('\n')[0]}${stderr ? `: ${stderr.trim()}` : ''}` : 'no answer' });
            });
    });
}

async function readBundle(file: string): Promise<Bundle | undefined> {
    try {
        return JSON.parse(await readFile(file, 'utf8')) as Bundle;
    } catch {
        return undefined;
    }
}
