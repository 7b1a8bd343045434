/**
 * One language server's life, for one workspace folder (or, the default server, for the documents
 * outside every folder): choose the folder's interpreter, check that it can run vramlint (else say
 * how to install it), start `python -m vramlint lsp` with the folder's settings, forward setting
 * changes, restart on demand. `servers.ts` keeps one per outermost folder.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import {
    commands, env, window, workspace, type ConfigurationChangeEvent, type Disposable, type ExtensionContext,
    type LogOutputChannel, type TextDocument, type Uri, type WorkspaceFolder,
} from 'vscode';
import {
    DidChangeConfigurationNotification, ExecuteCommandRequest, LanguageClient, RevealOutputChannelOn, State,
    type DocumentSelector, type DynamicFeature, type LanguageClientOptions, type Middleware, type ServerOptions,
    type StaticFeature,
} from 'vscode-languageclient/node';
import {
    CHECKOUT_PLACEHOLDER, chooseInterpreter, diagnose, importStrategy, parseProbe, pythonEnv, PROBE, serverLaunch, type Bundle,
    type ImportStrategy, type Interpreter, type Probe, type Problem,
} from './interpreter';
import { selectedInterpreter } from './python';
import { RESTART_SETTINGS, serverSettings, type Declared, type Vars } from './settings';
import { STATUS_METHOD, type FileStatus } from './status';
import type { StatusItem } from './statusItem';

const PROBE_TIMEOUT_MS = 30_000;

/** Which documents a server serves: a workspace folder's, or (the default server) those outside every folder. */
export interface Scope {
    /** The folder's URI, or DEFAULT_KEY (folders.ts). */
    key: string;
    folder: WorkspaceFolder | undefined;
    /** The default server's filter: whether a document is outside every workspace folder now. */
    outside?: (uri: Uri) => boolean;
}

/**
 * A language client without the server's commands as VS Code commands: several servers (one per
 * folder) each declaring `vramlint.showReport` would register it twice, which VS Code refuses.
 * The extension registers the commands once and sends them to the right server (servers.ts).
 */
class FolderClient extends LanguageClient {
    override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
        if ((feature as Partial<DynamicFeature<unknown>>).registrationType?.method !== ExecuteCommandRequest.method) {
            super.registerFeature(feature);
        }
    }
}

export class Server implements Disposable {
    private client: LanguageClient | undefined;
    private queue: Promise<void> = Promise.resolve();
    private readonly label: string;

    constructor(private readonly context: ExtensionContext, private readonly log: LogOutputChannel,
                private readonly status: StatusItem, readonly scope: Scope,
                private readonly onStatus: (status: FileStatus) => void) {
        this.label = scope.folder ? `[${scope.folder.name}] ` : workspace.workspaceFolders?.length ? '[outside the folders] ' : '';
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

    /** Runs a command of the server (`workspace/executeCommand`); undefined while it is not running. */
    async execute(command: string, args: unknown[]): Promise<unknown> {
        await this.queue;
        if (!this.client?.isRunning()) {
            return undefined;
        }
        return this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
    }

    isRunning(): boolean {
        return this.client?.isRunning() ?? false;
    }

    /** Whether the running server declares a command (an older one may lack a newer command). */
    supports(command: string): boolean {
        return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands.includes(command) ?? false;
    }

    /** Whether the interpreter comes from the Python extension (no `vramlint.interpreter` for this folder). */
    followsSelectedInterpreter(): boolean {
        return this.config().get<string[]>('interpreter', []).length === 0;
    }

    onConfigurationChange(e: ConfigurationChangeEvent): void {
        const scope = this.scope.folder?.uri;
        if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s, scope))) {
            this.log.info(`${this.label}the interpreter settings changed: restarting the server`);
            void this.restart();
        } else if (e.affectsConfiguration('vramlint', scope) && this.client?.isRunning()) {
            void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: this.settings() });
        }
    }

    private serial(step: () => Promise<void>): Promise<void> {
        this.queue = this.queue.then(step, step);
        return this.queue;
    }

    private config(): ReturnType<typeof workspace.getConfiguration> {
        return workspace.getConfiguration('vramlint', this.scope.folder?.uri);
    }

    private vars(): Vars {
        return { workspaceFolder: this.scope.folder?.uri.fsPath, userHome: os.homedir(), env: process.env };
    }

    /** The settings of this server's folder (resource-scoped settings read for it), as the server reads them. */
    private settings(): ReturnType<typeof serverSettings> {
        const config = this.config();
        const manifest = this.context.extension.packageJSON as { contributes: { configuration: { properties: Record<string, Declared> } } };
        return serverSettings((key) => config.get(key), this.vars(), manifest.contributes.configuration.properties);
    }

    private async doStart(): Promise<void> {
        const key = this.scope.key;
        this.status.starting(key);
        const folder = this.scope.folder;
        const config = this.config();
        const interp = chooseInterpreter(config.get('interpreter'), await selectedInterpreter(folder?.uri, this.log), this.vars());
        const strategy = importStrategy(config.get('importStrategy'));
        const libs = this.context.asAbsolutePath('bundled/libs');
        const bundle = strategy === 'useBundled' ? await readBundle(this.context.asAbsolutePath('bundled/bundle.json')) : undefined;
        this.log.info(`${this.label}interpreter: ${interp.argv.join(' ')} (from ${interp.source}); import strategy: ${strategy}`);

        const { probe, error } = await runProbe(interp, strategy, libs, folder?.uri.fsPath);
        const problem = diagnose(interp, strategy, probe, error, bundle);
        if (problem !== undefined) {
            this.fail(problem, interp);
            return;
        }
        this.log.info(`${this.label}Python ${probe?.python} (${probe?.executable}), vramlint ${probe?.vramlint}`);

        const launch = serverLaunch(interp, strategy, libs, process.env);
        const serverOptions: ServerOptions = {
            command: launch.command, args: launch.args, options: { env: launch.env, cwd: folder?.uri.fsPath },
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: selector(folder),
            outputChannel: this.log,
            traceOutputChannel: this.log,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: () => this.settings(),
            workspaceFolder: folder,
            middleware: {
                ...(this.scope.outside ? onlyOutside(this.scope.outside) : {}),
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
        // The id `vramlint` is the prefix of the `vramlint.trace.server` setting the client reads.
        const client = new FolderClient('vramlint', folder ? `vramlint (${folder.name})` : 'vramlint', serverOptions, clientOptions);
        client.onNotification(STATUS_METHOD, (params: FileStatus) => this.onStatus(params));
        client.onDidChangeState((e) => {
            // Stopped by itself (the language client gave up restarting a crashing server), not by us.
            if (e.newState === State.Stopped && this.client === client) {
                this.status.failed(key, 'the server stopped: see the log (vramlint: Show Logs), then vramlint: Restart Server');
            }
        });
        this.log.info(`${this.label}starting: ${launch.command} ${launch.args.join(' ')}${folder ? ` in ${folder.uri.fsPath}` : ''}`);
        try {
            await client.start();
            this.client = client;
            this.status.started(key);
        } catch (err) {
            this.log.error(`${this.label}the server did not start: ${String(err)}`);
            this.status.failed(key, `the server did not start: ${String(err)}`);
            void window.showErrorMessage(`vramlint: the language server did not start: ${String(err)}`, 'Show Logs')
                .then((choice) => choice && this.log.show());
        }
    }

    private async doStop(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (client !== undefined) {
            this.log.info(`${this.label}stopping the server`);
            try {
                await client.stop(5000);
            } catch (err) {
                this.log.warn(`${this.label}stopping the server: ${String(err)}`);
            }
        }
    }

    private fail(problem: Problem, interp: Interpreter): void {
        this.log.error(`${this.label}${problem.message}`);
        this.status.failed(this.scope.key, problem.message);
        const actions = problem.install ? ['Install in Terminal', 'Copy Command', 'Show Logs'] : ['Open Settings', 'Show Logs'];
        void window.showErrorMessage(problem.message, ...actions).then(async (choice) => {
            if (choice === 'Install in Terminal' && problem.install) {
                const terminal = window.createTerminal({ name: 'vramlint: install', cwd: this.scope.folder?.uri });
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
    }
}

/**
 * A folder's server serves the Python files under it: a relative pattern (the folder's URI and
 * `**` + `/*`), which unlike lsp-multi-server-sample's `${fsPath}/**` + `/*` survives glob characters
 * in the folder's path. The default server's selector is every Python file, filtered by `onlyOutside`.
 */
function selector(folder: WorkspaceFolder | undefined): DocumentSelector {
    if (folder === undefined) {
        return [{ scheme: 'file', language: 'python' }];
    }
    return [{ scheme: 'file', language: 'python', pattern: { baseUri: folder.uri.toString(), pattern: '**/*' } }];
}

/**
 * The default server's middleware: a document selector cannot say "outside these folders", so the
 * default server selects every Python file and this keeps the documents of the folders' servers
 * from it (it is never told of them, and is asked nothing about them).
 */
function onlyOutside(outside: (uri: Uri) => boolean): Middleware {
    const mine = (doc: TextDocument): boolean => outside(doc.uri);
    const skip = (): Promise<void> => Promise.resolve();
    return {
        didOpen: (doc, next) => mine(doc) ? next(doc) : skip(),
        didChange: (e, next) => mine(e.document) ? next(e) : skip(),
        willSave: (e, next) => mine(e.document) ? next(e) : skip(),
        willSaveWaitUntil: (e, next) => mine(e.document) ? next(e) : Promise.resolve([]),
        didSave: (doc, next) => mine(doc) ? next(doc) : skip(),
        didClose: (doc, next) => mine(doc) ? next(doc) : skip(),
        provideHover: (doc, position, token, next) => mine(doc) ? next(doc, position, token) : undefined,
        provideInlayHints: (doc, range, token, next) => mine(doc) ? next(doc, range, token) : [],
        provideCodeLenses: (doc, token, next) => mine(doc) ? next(doc, token) : [],
        provideCodeActions: (doc, range, context, token, next) => mine(doc) ? next(doc, range, context, token) : [],
    };
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
