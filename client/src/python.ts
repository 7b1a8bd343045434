/**
 * The interpreter selected in the Python extension, through its public API
 * (`@vscode/python-extension`), when that extension is installed: it is not a dependency.
 */
import { PythonExtension } from '@vscode/python-extension';
import { Disposable, extensions, type LogOutputChannel, type Uri, type WorkspaceFolder } from 'vscode';

const PYTHON_EXTENSION = 'ms-python.python';

async function api(log: LogOutputChannel): Promise<PythonExtension | undefined> {
    if (extensions.getExtension(PYTHON_EXTENSION) === undefined) {
        return undefined;
    }
    try {
        return await PythonExtension.api();
    } catch (err) {
        log.warn(`the Python extension's API is not available: ${String(err)}`);
        return undefined;
    }
}

/** The selected interpreter's executable for `resource`'s folder, if the Python extension says one. */
export async function selectedInterpreter(resource: Uri | undefined, log: LogOutputChannel): Promise<string[] | undefined> {
    const python = await api(log);
    if (python === undefined) {
        return undefined;
    }
    try {
        const selected = python.environments.getActiveEnvironmentPath(resource);
        const env = await python.environments.resolveEnvironment(selected);
        const executable = env?.executable.uri?.fsPath;
        return executable ? [executable] : undefined;
    } catch (err) {
        log.warn(`the Python extension did not resolve the selected interpreter: ${String(err)}`);
        return undefined;
    }
}

/** Calls `listener` when the interpreter selected in the Python extension changes, with the folder it changed for (undefined: all). */
export async function onSelectedInterpreterChange(listener: (folder: WorkspaceFolder | undefined) => void,
                                                  log: LogOutputChannel): Promise<Disposable> {
    const python = await api(log);
    return python === undefined ? new Disposable(() => undefined)
        : python.environments.onDidChangeActiveEnvironmentPath((e) => listener(e.resource));
}
