/**
 * The editor's settings as the language server reads them (`initializationOptions` and
 * `workspace/didChangeConfiguration`, under `vramlint`: see docs/lsp.md). Pure: no `vscode` import,
 * so it is tested without VS Code.
 */
import * as path from 'node:path';

/** Reads one key of the `vramlint` section (`WorkspaceConfiguration.get`). */
export type Read = (key: string) => unknown;

/** What `${...}` variables and `~` expand to. */
export interface Vars {
    workspaceFolder?: string;
    userHome: string;
    env: Record<string, string | undefined>;
}

export interface ServerSettings {
    gpu?: string;
    batchSize?: number;
    precision?: string;
    optimizer?: string;
    mode?: string;
    extraPaths: string[];
    inlayHints: { layers: boolean; shapes: boolean };
    codeLens: boolean;
}

/** Setup keys the server validates; unset (`null`, `""`, `"auto"`) means "not from the editor": the
 * project's configuration, then what the code shows, decide. */
const SETUP_KEYS = ['gpu', 'batchSize', 'precision', 'optimizer', 'mode'] as const;

/** Settings that only the client reads: a change restarts the server. */
export const RESTART_SETTINGS = ['vramlint.interpreter', 'vramlint.importStrategy'];

export function serverSettings(read: Read, vars: Vars): { vramlint: ServerSettings } {
    const out: ServerSettings = {
        extraPaths: stringList(read('extraPaths')).map((p) => absolute(resolveVariables(p, vars), vars)),
        inlayHints: { layers: flag(read('inlayHints.layers')), shapes: flag(read('inlayHints.shapes')) },
        codeLens: flag(read('codeLens')),
    };
    for (const key of SETUP_KEYS) {
        const value = read(key);
        // A value that is set goes as it is: the server validates it and logs what is wrong.
        if (value !== undefined && value !== null && value !== '' && value !== 'auto') {
            (out as unknown as Record<string, unknown>)[key] = typeof value === 'string' ? value.trim() : value;
        }
    }
    return { vramlint: out };
}

/** `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~`, as VS Code's own settings. */
export function resolveVariables(value: string, vars: Vars): string {
    let out = value.replace(/\$\{(workspaceFolder|userHome|env:([^}]+))\}/g, (whole, name: string, envName?: string) => {
        if (envName !== undefined) {
            return vars.env[envName] ?? '';
        }
        if (name === 'userHome') {
            return vars.userHome;
        }
        return vars.workspaceFolder ?? whole;
    });
    if (out === '~' || out.startsWith('~/')) {
        out = vars.userHome + out.slice(1);
    }
    return out;
}

export function stringList(value: unknown): string[] {
    if (typeof value === 'string') {
        return value.trim() ? [value.trim()] : [];
    }
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v.trim() !== '') : [];
}

function absolute(p: string, vars: Vars): string {
    return path.isAbsolute(p) || vars.workspaceFolder === undefined ? p : path.join(vars.workspaceFolder, p);
}

function flag(value: unknown): boolean {
    return value !== false;
}
