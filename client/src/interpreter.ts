/**
 * Which Python runs the language server, how, and what to tell the user when it cannot. Pure: no
 * `vscode` import. The choice, as Microsoft's Python tool extensions make it: the
 * `vramlint.interpreter` setting, else the interpreter selected in the Python extension, else
 * `python3` on PATH.
 */
import * as path from 'node:path';
import { resolveVariables, stringList, type Vars } from './settings';

export type ImportStrategy = 'fromEnvironment' | 'useBundled';

export interface Interpreter {
    /** The executable and its first arguments (`["conda", "run", "-n", "ml", "python"]`). */
    argv: string[];
    source: 'vramlint.interpreter' | 'the Python extension' | 'PATH';
}

export function chooseInterpreter(setting: unknown, fromPythonExtension: string[] | undefined, vars: Vars): Interpreter {
    const argv = stringList(setting).map((v) => resolveVariables(v, vars));
    if (argv.length > 0) {
        return { argv, source: 'vramlint.interpreter' };
    }
    if (fromPythonExtension !== undefined && fromPythonExtension.length > 0) {
        return { argv: fromPythonExtension, source: 'the Python extension' };
    }
    return { argv: ['python3'], source: 'PATH' };
}

export function importStrategy(value: unknown): ImportStrategy {
    return value === 'useBundled' ? 'useBundled' : 'fromEnvironment';
}

export interface Launch {
    command: string;
    args: string[];
    env: Record<string, string | undefined>;
}

/** `python -m vramlint lsp` (stdio); with `useBundled`, the extension's `bundled/libs` first on the path. */
export function serverLaunch(interp: Interpreter, strategy: ImportStrategy, bundledLibs: string,
                             env: Record<string, string | undefined>): Launch {
    return { command: interp.argv[0], args: [...interp.argv.slice(1), '-m', 'vramlint', 'lsp'], env: pythonEnv(strategy, bundledLibs, env) };
}

export function pythonEnv(strategy: ImportStrategy, bundledLibs: string,
                          env: Record<string, string | undefined>): Record<string, string | undefined> {
    if (strategy !== 'useBundled') {
        return { ...env };
    }
    return { ...env, PYTHONPATH: [bundledLibs, env.PYTHONPATH].filter((p) => p).join(path.delimiter) };
}

/** Run by the interpreter (with the server's environment) before the server starts: prints JSON. */
export const PROBE = `
import json, sys, sysconfig
out = {"python": "%d.%d" % sys.version_info[:2], "platform": sysconfig.get_platform(),
       "executable": sys.executable, "vramlint": None, "error": None}
try:
    import vramlint
    out["vramlint"] = vramlint.__version__
except Exception as err:
    out["error"] = "%s: %s" % (type(err).__name__, err)
print(json.dumps(out))
`;

export interface Probe {
    python: string;
    platform: string;
    executable: string;
    vramlint: string | null;
    error: string | null;
}

/** `bundled/bundle.json`, written when the platform-specific extension is packaged. */
export interface Bundle {
    python: string;
    platform: string;
    vramlint: string;
}

export type ProblemKind = 'no-interpreter' | 'old-python' | 'not-installed' | 'no-bundle' | 'bundle-mismatch';

export interface Problem {
    kind: ProblemKind;
    message: string;
    /** The command that installs vramlint for the interpreter, where that is the way out. */
    install?: string;
}

export const MIN_PYTHON: [number, number] = [3, 10];

/** What keeps the server from starting, from the probe's result (or the error running it). */
export function diagnose(interp: Interpreter, strategy: ImportStrategy, probe: Probe | undefined,
                         runError: string | undefined, bundle: Bundle | undefined): Problem | undefined {
    const who = `"${interp.argv.join(' ')}" (from ${interp.source})`;
    const install = installCommand(interp);
    if (probe === undefined) {
        return {
            kind: 'no-interpreter',
            message: `vramlint: cannot run the Python interpreter ${who}: ${runError ?? 'no answer'}. ` +
                'Set vramlint.interpreter, or select an interpreter in the Python extension.',
        };
    }
    const [major, minor] = probe.python.split('.').map(Number);
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
        return {
            kind: 'old-python',
            message: `vramlint needs Python ${MIN_PYTHON.join('.')} or newer; ${who} is Python ${probe.python}.`,
        };
    }
    if (strategy === 'useBundled') {
        if (bundle === undefined) {
            return {
                kind: 'no-bundle', install,
                message: 'vramlint.importStrategy is "useBundled", but this build of the extension carries no bundled ' +
                    'vramlint (libcst, one of its dependencies, is compiled for each platform and Python version: only ' +
                    'a platform-specific build carries it). Set vramlint.importStrategy to "fromEnvironment" and ' +
                    `install vramlint in ${who} from a checkout of its repository: ${install}`,
            };
        }
        if (bundle.python !== probe.python || bundle.platform !== probe.platform) {
            return {
                kind: 'bundle-mismatch', install,
                message: `The bundled vramlint is built for Python ${bundle.python} on ${bundle.platform}; ${who} is ` +
                    `Python ${probe.python} on ${probe.platform}. Choose a matching interpreter, or set ` +
                    `vramlint.importStrategy to "fromEnvironment" and install vramlint from a checkout of its repository: ${install}`,
            };
        }
    }
    if (probe.vramlint === null) {
        const bundled = strategy === 'useBundled' ? 'the bundled vramlint does not import' : 'vramlint is not installed';
        return {
            kind: 'not-installed', install,
            message: `${bundled} in the Python environment of ${who} (${probe.error ?? 'import failed'}). ` +
                `Install it from a checkout of the vramlint repository (or a wheel built from one) with: ${install}`,
        };
    }
    return undefined;
}

/** vramlint is not published on PyPI: it installs from a checkout of its repository (or a wheel built
 * from one), whose path only the user knows. The command names it with this placeholder. */
export const CHECKOUT_PLACEHOLDER = '/path/to/vramlint';

export function installCommand(interp: Interpreter): string {
    return [...[...interp.argv, '-m', 'pip', 'install'].map(shellQuote), CHECKOUT_PLACEHOLDER].join(' ');
}

export function shellQuote(arg: string): string {
    return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function parseProbe(stdout: string): Probe | undefined {
    const line = stdout.trim().split('\n').pop() ?? '';
    try {
        const value = JSON.parse(line) as Partial<Probe>;
        return typeof value.python === 'string' && typeof value.platform === 'string' ? (value as Probe) : undefined;
    } catch {
        return undefined;
    }
}
