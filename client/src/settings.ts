/**
 * The editor's settings as the language server reads them (`initializationOptions` and
 * `workspace/didChangeConfiguration`, under `vramlint`: see docs/lsp.md). Pure: no `vscode` import,
 * so it is tested without VS Code.
 */
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

/** Reads one key of the `vramlint` section (`WorkspaceConfiguration.get`). */
export type Read = (key: string) => unknown;

/** What `${...}` variables and `~` expand to. */
export interface Vars {
    workspaceFolder?: string;
    userHome: string;
    env: Record<string, string | undefined>;
}

/** The `vramlint` section the server reads: its keys and types are declared once, in Python
 * (server/vramlint/lsp/editor_settings.py), and in the manifest, tested equal (tests/test_editor_settings.py). */
export type ServerSettings = Record<string, unknown>;

/** A setting as the manifest declares it (`contributes.configuration.properties` of package.json). */
export interface Declared {
    default?: unknown;
}

/** The extension's own settings: they choose and start the server, which never gets them. */
export const CLIENT_SETTINGS = ['interpreter', 'importStrategy', 'trace.server'];

/** Client settings whose change restarts the server (the language client applies `trace.server` itself). */
export const RESTART_SETTINGS = ['vramlint.interpreter', 'vramlint.importStrategy'];

/**
 * Every `vramlint.*` setting the manifest declares, other than the client's own, as the server reads
 * it (`inlayHints.layers` nested as `{inlayHints: {layers}}`). A value equal to its default is not
 * sent: a setup key's default (`null`, `""`, `"auto"`, `[]`) means "not from the editor", so the
 * project's configuration, then what the code shows, decide; the others' defaults are the server's.
 * A set value goes as it is: the server validates it and logs what is wrong.
 */
export function serverSettings(read: Read, vars: Vars, declared: Record<string, Declared>): { vramlint: ServerSettings } {
    const out: ServerSettings = {};
    for (const [name, setting] of Object.entries(declared)) {
        const key = name.replace(/^vramlint\./, '');
        if (CLIENT_SETTINGS.includes(key)) {
            continue;
        }
        let value = read(key);
        if (key === 'extraPaths') {
            value = stringList(value).map((p) => absolute(resolveVariables(p, vars), vars));
        } else if (typeof value === 'string') {
            value = value.trim();
        }
        if (value !== undefined && value !== null && !isDeepStrictEqual(value, setting.default)) {
            nest(out, key.split('.'), value);
        }
    }
    return { vramlint: out };
}

/** `value` at `path` in `target`, making the objects on the way (VS Code's dotted settings are nested objects). */
function nest(target: Record<string, unknown>, path: string[], value: unknown): void {
    let at = target;
    for (const key of path.slice(0, -1)) {
        at = (at[key] ??= {}) as Record<string, unknown>;
    }
    at[path[path.length - 1]] = value;
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
