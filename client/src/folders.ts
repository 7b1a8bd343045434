/**
 * Which language server serves a document. In a multi-root workspace each outermost workspace
 * folder has its own server, started with that folder's settings (interpreter, GPU, extra paths);
 * a folder inside another is served by the outer one's (as in Microsoft's lsp-multi-server-sample),
 * and documents outside every folder by one default server. Pure: no `vscode` import; folders and
 * documents are URI strings as `Uri.toString()` writes them.
 */

/** The key of the default server, the one for documents outside every workspace folder. */
export const DEFAULT_KEY = '';

/** Whether `uri` is `folder` or inside it (`file:///a/b` does not contain `file:///a/bc`). */
export function contains(folder: string, uri: string): boolean {
    const dir = folder.endsWith('/') ? folder : `${folder}/`;
    return uri === folder || uri.startsWith(dir);
}

/** The folders of the list that are inside no other folder of the list, in the list's order. */
export function outermost(folders: readonly string[]): string[] {
    return folders.filter((f, i) => !folders.some((g, j) => j !== i && g !== f && contains(g, f)));
}

/** The key of the server that serves `uri`: the outermost folder holding it, else DEFAULT_KEY. */
export function ownerOf(uri: string, folders: readonly string[]): string {
    return outermost(folders).find((f) => contains(f, uri)) ?? DEFAULT_KEY;
}

/** What a change of the workspace's folders does to the running servers (keyed by folder). */
export interface FolderChange {
    /** Servers of folders that left, or that are now inside another folder: stopped. */
    stop: string[];
    /** Whether the default server (if running) must restart: a document it served may now be in a
     * folder, or one it did not serve may now be outside every folder. */
    restartDefault: boolean;
}

export function folderChange(running: readonly string[], before: readonly string[], after: readonly string[]): FolderChange {
    const keep = new Set(outermost(after));
    const stop = running.filter((key) => key !== DEFAULT_KEY && !keep.has(key));
    const same = before.length === after.length && before.every((f, i) => f === after[i]);
    return { stop, restartDefault: running.includes(DEFAULT_KEY) && !same };
}
