/**
 * End to end, in a real VS Code: code-server (VS Code 1.100 for the browser, installed by
 * setup-code-server.sh) with the packaged .vsix installed, a workspace holding examples/mlp.py,
 * headless Chromium driven by playwright-core. Asserts what a user sees: inlay hints on layer
 * lines, the hover on a model class (parameters, training peak), the code lens and the report it
 * opens; once `vramlint.gpu` is set to a budget the model exceeds (and `vramlint.maxLayerParams` to
 * a limit), the VL001 and VL101 diagnostics in the Problems panel and the language status item;
 * with an interpreter that lacks vramlint, the message that says how to install it. Steps and
 * timings: docs/vscode.md.
 *
 * It finds what it checks by the roles and names VS Code gives screen readers (the editor is
 * `code`, a code lens a `button`, a hover a `tooltip`, a problem a `treeitem`, a notification a
 * `dialog`), and acts through commands run from the palette by their titles (Go to Line/Column,
 * Show or Focus Hover, Show CodeLens Commands for Current Line), not through VS Code's CSS classes
 * or positions on screen. One exception: inlay hints have no role or name (a screen reader never
 * sees them), so they are read from the editor's rendered lines.
 *
 *   npm run e2e [-- --vsix FILE] [--screenshot docs/images/vscode.png] [--report-screenshot FILE] [--python PATH] [--bundled]
 *
 * The server runs from the repository's .venv (`vramlint.interpreter` in the workspace settings);
 * with --bundled (and the .vsix of `npm run package:bundled`), from the libraries bundled in the
 * .vsix (`vramlint.importStrategy: useBundled`), run by a python3 that has no vramlint of its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..', '..');
const CODE_SERVER = path.join(ROOT, '.e2e/code-server/node_modules/code-server/out/node/entry.js');
const ARTIFACTS = path.join(ROOT, '.e2e/artifacts');
const WAIT_MS = 20_000; // for anything the server computes (its start included)

function option(name: string, fallback: string): string {
    const i = process.argv.indexOf(name);
    return i >= 0 && process.argv[i + 1] ? path.resolve(process.argv[i + 1]) : fallback;
}

const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const VSIX = option('--vsix', path.join(ROOT, `vramlint-${version}.vsix`));
const SCREENSHOT = option('--screenshot', path.join(ARTIFACTS, 'editor.png'));
const REPORT_SCREENSHOT = option('--report-screenshot', path.join(ARTIFACTS, 'report.png'));
const BUNDLED = process.argv.includes('--bundled');
const PYTHON = option('--python', BUNDLED ? '/usr/bin/python3' : path.join(ROOT, '.venv/bin/python'));

const started = Date.now();
function step(message: string): void {
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
}

class Failure extends Error {}

/** Polls `probe` until it returns a value (not undefined/false), or fails saying what was awaited. */
async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeout = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeout;
    let last: unknown;
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined && value !== false) {
                return value;
            }
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) {
            throw new Failure(`timed out after ${timeout / 1000} s waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 250));
    }
}

function check(condition: boolean, message: string): void {
    if (!condition) {
        throw new Failure(message);
    }
    console.log(`  ok: ${message}`);
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

function writeJson(file: string, value: unknown): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

/** The editor's rendered lines (inlay hints and all), spaces normal: the only place that has the
 * hints (no accessibility role exposes them), so the one internal class this test reads. */
async function editorLines(page: Page): Promise<string[]> {
    return page.getByRole('code').locator('.view-line').evaluateAll((lines) =>
        lines.map((l) => ({ top: parseFloat((l as HTMLElement).style.top) || 0, text: (l.textContent ?? '').replace(/\u00a0/g, ' ') }))
            .sort((a, b) => a.top - b.top).map((l) => l.text));
}

async function lineWith(page: Page, start: string): Promise<string | undefined> {
    return (await editorLines(page)).find((l) => l.trimStart().startsWith(start));
}

/** The code lenses in the editor: buttons named by their titles. */
async function lenses(page: Page): Promise<string[]> {
    const titles = await page.getByRole('code').getByRole('button', { name: /params/ }).allTextContents();
    return titles.map((t) => t.replace(/\u00a0/g, ' '));
}

function escapeRegExp(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The 1-based line and column of `token` on the first line of `text` that starts with `lineStart`. */
function positionOf(text: string, lineStart: string, token: string): { line: number; column: number } {
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.trimStart().startsWith(lineStart));
    if (line < 0 || !lines[line].includes(token)) {
        throw new Failure(`no line starting with ${lineStart} and holding ${token}`);
    }
    return { line: line + 1, column: lines[line].indexOf(token) + 1 };
}

/** The extension's log files (its log output channel). */
function logFiles(userData: string): string[] {
    const found = spawnSync('find', [path.join(userData, 'logs'), '-type', 'f', '-name', 'vramlint.log'], { encoding: 'utf8' });
    return found.stdout.split('\n').filter((f) => f);
}

/** The report webview's page (the frame inside its iframe) whose text holds `marker`. */
async function reportFrame(page: Page, marker: string): Promise<Frame | undefined> {
    for (const frame of page.frames()) {
        const text = await frame.locator('body').textContent({ timeout: 500 }).catch(() => null);
        if (text?.includes(marker) && await frame.locator('svg#training-chart').count() === 1) {
            return frame;
        }
    }
    return undefined;
}

/** Runs a command from the command palette by its title, as a keyboard user does. */
async function runCommand(page: Page, title: string): Promise<void> {
    await page.keyboard.press('F1');
    const input = page.getByRole('textbox', { name: 'Type the name of a command to run.' });
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    await page.getByRole('option', { name: new RegExp(`^${escapeRegExp(title)}`) }).first().click({ timeout: 10_000 });
}

/** The cursor to a line and column of the active editor (Go to Line/Column). */
async function goTo(page: Page, at: { line: number; column: number }): Promise<void> {
    await runCommand(page, 'Go to Line/Column...');
    await page.keyboard.type(`${at.line}:${at.column}`);
    await page.keyboard.press('Enter');
    await until(`the cursor at line ${at.line}`, async () =>
        page.getByRole('button', { name: `Ln ${at.line}, Col ${at.column}` }).isVisible());
}

/** Opens a file by its name in the workspace, or its path (Go to File...), and waits for its editor. */
async function openFile(page: Page, query: string, name = query): Promise<void> {
    await runCommand(page, 'Go to File...');
    await page.keyboard.type(query);
    await page.getByRole('option', { name: new RegExp(`^${escapeRegExp(name)}`) }).first().click({ timeout: 10_000 });
    await page.getByRole('code').getByRole('textbox', { name }).waitFor({ timeout: 10_000 });
}

/**
 * A multi-root workspace of two folders holding the same model, whose folder settings
 * (`.vscode/settings.json`) give different GPUs: each folder has its own server, with its settings,
 * so the model does not fit in one and fits in the other; the language status item follows.
 */
async function multiRoot(page: Page, port: number, tmp: string, source: string, settings: Record<string, unknown>,
                         userData: string): Promise<void> {
    const root = path.join(tmp, 'multi');
    const folders = { small: { gpu: '0.5GiB', budget: '512.0 MiB (does NOT fit)' }, large: { gpu: 'H100-80GB', budget: '79.19 GiB' } };
    for (const [name, { gpu }] of Object.entries(folders)) {
        fs.mkdirSync(path.join(root, name), { recursive: true });
        fs.writeFileSync(path.join(root, name, `mlp_${name}.py`), source);
        writeJson(path.join(root, name, '.vscode/settings.json'), { ...settings, 'vramlint.gpu': gpu });
    }
    const file = path.join(root, 'two.code-workspace');
    // The workspace's own settings (an L4) serve the files outside both folders.
    const workspaceSettings = { ...settings, 'vramlint.gpu': 'L4' };
    writeJson(file, { folders: Object.keys(folders).map((name) => ({ path: name })), settings: workspaceSettings });
    // The workbench is up once the explorer shows the first folder (a load that came up empty is tried again).
    await until('the multi-root workspace in the explorer', async () => {
        await page.goto(`http://127.0.0.1:${port}/?workspace=${encodeURIComponent(file)}`);
        await page.getByRole('application').waitFor({ timeout: 30_000 });
        return page.getByRole('tree', { name: 'Files Explorer' }).getByRole('treeitem', { name: 'small' }).first()
            .waitFor({ timeout: 15_000 }).then(() => true);
    }, 90_000);
    step(`the multi-root workspace ${path.basename(file)} (folders ${Object.keys(folders).join(', ')}) is up`);
    for (const [name, { budget }] of Object.entries(folders)) {
        await openFile(page, `mlp_${name}.py`);
        const lens = await until(`the code lens of MLP in ${name}`, async () =>
            (await lenses(page)).find((l) => l.includes('131.4K params · training peak') && l.includes('/ ')));
        check(lens.includes(`/ ${budget}`), `${name}/mlp_${name}.py, vramlint.gpu ${folders[name as keyof typeof folders].gpu} in its folder: "${lens}"`);
        await page.getByRole('button', { name: new RegExp(`^Editor Language Status: .*MLP: device total [\\d.]+ MiB / ${escapeRegExp(budget)}`) })
            .or(page.getByRole('button', { name: new RegExp(`^Editor Language Status: .*model: device total [\\d.]+ MiB / ${escapeRegExp(budget)}`) }))
            .first().waitFor({ timeout: 10_000 });
        check(true, `the language status item gives ${name}'s budget (${budget})`);
    }
    const log = (): string[] => logFiles(userData).map((f) => fs.readFileSync(f, 'utf8')).join('\n').split('\n');
    const startedIn = (name: string) => log().some((l) => l.includes(`[${name}] starting:`) && l.endsWith(` in ${path.join(root, name)}`));
    for (const name of Object.keys(folders)) {
        check(startedIn(name), `a server of its own for ${name}, in its folder (the extension's log)`);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'multi-root.png') });

    // A file outside both folders (opened by its path): the default server, with the workspace's settings;
    // it serves only that file, so the folders' files keep one code lens per model, their folder's.
    const outside = path.join(root, 'outside', 'mlp_outside.py');
    fs.mkdirSync(path.dirname(outside), { recursive: true });
    fs.writeFileSync(outside, source);
    await openFile(page, outside, 'mlp_outside.py');
    const outsideLens = await until('the code lens of MLP outside the folders', async () =>
        (await lenses(page)).find((l) => l.includes('131.4K params · training peak') && l.includes('/ ')));
    check(outsideLens.includes('/ 21.96 GiB') && log().some((l) => l.includes('[outside the folders] starting:')),
        `a file outside the folders: the default server, the workspace's vramlint.gpu L4: "${outsideLens}"`);
    await openFile(page, 'mlp_small.py');
    const smallLenses = await until('the code lenses of mlp_small.py', async () => {
        const found = (await lenses(page)).filter((l) => l.includes('training peak'));
        return found.length >= 3 ? found : undefined;
    });
    check(smallLenses.length === 3 && smallLenses.every((l) => l.includes('/ 512.0 MiB')),
        `the default server leaves the folders' files alone: ${smallLenses.length} code lenses in mlp_small.py, all its folder's`);

    // The folders change while VS Code runs (the workspace file edited): large leaves, extra (a T4) comes.
    fs.mkdirSync(path.join(root, 'extra'), { recursive: true });
    fs.writeFileSync(path.join(root, 'extra', 'mlp_extra.py'), source);
    writeJson(path.join(root, 'extra', '.vscode/settings.json'), { ...settings, 'vramlint.gpu': 'T4' });
    writeJson(file, { folders: [{ path: 'small' }, { path: 'extra' }], settings: workspaceSettings });
    step('two.code-workspace: folder large removed, folder extra added');
    await until('the server of large to stop', async () => log().some((l) => l.includes('[large] stopping the server')));
    check(true, 'the removed folder\'s server stops');
    await openFile(page, 'mlp_extra.py');
    const lens = await until('the code lens of MLP in extra', async () =>
        (await lenses(page)).find((l) => l.includes('131.4K params · training peak') && l.includes('/ ')));
    check(lens.includes('/ 14.58 GiB') && startedIn('extra'), `the added folder's server, with its settings (vramlint.gpu T4): "${lens}"`);

    // vramlint: Restart Server restarts every server: each stops, and starts again for its open files.
    const count = (what: string) => log().filter((l) => l.includes(what)).length;
    const before = ['small', 'extra', 'outside the folders'].map((n) => count(`[${n}] starting:`));
    await runCommand(page, 'vramlint: Restart Server');
    step('vramlint: Restart Server');
    await until('every server to start again', async () =>
        ['small', 'extra', 'outside the folders'].every((n, i) => count(`[${n}] starting:`) > before[i]));
    check(true, 'the servers of small, extra and the files outside the folders restart');
}

async function main(): Promise<void> {
    for (const [what, file] of [['code-server (bash client/e2e/setup-code-server.sh)', CODE_SERVER],
        ['the .vsix (npm run package)', VSIX], ['the Python with vramlint (.venv)', PYTHON]]) {
        if (!fs.existsSync(file)) {
            throw new Failure(`${what} is missing: ${file}`);
        }
    }
    if (BUNDLED && spawnSync(PYTHON, ['-c', 'import vramlint']).status === 0) {
        throw new Failure(`--bundled needs a Python without vramlint, to show that the bundled one runs: ${PYTHON} has it`);
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vramlint-e2e-'));
    const home = path.join(tmp, 'home');
    const userData = path.join(tmp, 'user-data');
    const extensions = path.join(tmp, 'extensions');
    const workspace = path.join(tmp, 'workspace');
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.mkdirSync(workspace, { recursive: true });
    const source = fs.readFileSync(path.join(ROOT, 'examples/mlp.py'), 'utf8');
    fs.writeFileSync(path.join(workspace, 'mlp.py'), source);
    const mlpClass = positionOf(source, 'class MLP', 'MLP');
    const workspaceSettings = path.join(workspace, '.vscode/settings.json');
    // The class and the factory get their batch from the editor's settings (the instance has it in the file).
    const settings = { 'vramlint.interpreter': [PYTHON], 'vramlint.importStrategy': BUNDLED ? 'useBundled' : 'fromEnvironment', 'vramlint.batchSize': 256 };
    writeJson(workspaceSettings, settings);
    writeJson(path.join(userData, 'User/settings.json'), {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.colorTheme': 'Default Dark Modern',
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.ignoreRecommendations': true,
        'editor.inlayHints.enabled': 'on',
        'editor.minimap.enabled': false,
        'editor.fontSize': 14,
        'editor.hover.delay': 200,
        'editor.hover.above': false,
        'workbench.reduceMotion': 'on',
        'chat.commandCenter.enabled': false,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
    });
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_DATA_HOME: path.join(home, '.local/share') };
    const common = ['--user-data-dir', userData, '--extensions-dir', extensions];

    step(`installing ${path.relative(ROOT, VSIX)} into code-server`);
    const install = spawnSync(process.execPath, [CODE_SERVER, ...common, '--install-extension', VSIX], { env, encoding: 'utf8', timeout: 60_000 });
    if (install.status !== 0 || !/was successfully installed/.test(install.stdout)) {
        throw new Failure(`code-server --install-extension failed (${install.status}):\n${install.stdout}\n${install.stderr}`);
    }
    check(fs.readdirSync(extensions).some((d) => d.startsWith(`vramlint.vramlint-${version}`)), `the extension is installed (${fs.readdirSync(extensions).filter((d) => !d.endsWith('.json')).join(', ')})`);
    const installed = path.join(extensions, fs.readdirSync(extensions).find((d) => d.startsWith(`vramlint.vramlint-${version}`)) ?? '');
    const carried = ['client/images/icon.png', 'changelog.md', 'LICENSE.txt', 'readme.md'].filter((f) => fs.existsSync(path.join(installed, f)));
    check(carried.length === 4, `the .vsix carries the icon, the changelog, the license and the readme (${carried.join(', ')})`);

    const port = await freePort();
    const log = fs.openSync(path.join(ARTIFACTS, 'code-server.log'), 'w');
    const server: ChildProcess = spawn(process.execPath, [CODE_SERVER, ...common, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
        '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', workspace],
    { env, detached: true, stdio: ['ignore', log, log] }); // detached: its own process group, stopped whole
    let context: BrowserContext | undefined;
    let page: Page | undefined;
    try {
        step(`code-server (pid ${server.pid}) on 127.0.0.1:${port}`);
        await until('code-server to answer /healthz', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000);

        context = await chromium.launchPersistentContext(path.join(tmp, 'browser'), {
            executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
            headless: true,
            viewport: { width: 1400, height: 860 },
            args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'],
        });
        page = context.pages()[0] ?? await context.newPage();
        await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
        await page.getByRole('application').waitFor({ timeout: 30_000 });
        step('the workbench is up; opening mlp.py');
        await until('the editor of mlp.py', async () => {
            if (await lineWith(page!, 'class MLP')) {
                return true;
            }
            await page!.getByRole('tree', { name: 'Files Explorer' }).getByRole('treeitem', { name: 'mlp.py' }).dblclick({ timeout: 5000 });
            await page!.getByRole('code').waitFor({ timeout: 5000 });
            return false;
        }, 30_000);

        // Inlay hints on the layer lines (parameters) and a forward line (shape and size).
        const first = await until('the inlay hint of the first Linear layer', async () => {
            const line = await lineWith(page!, 'nn.Linear(1000, 100), nn.ReLU(),');
            return line?.includes('params') ? line : undefined;
        });
        step('inlay hints are shown');
        check(/nn\.Linear\(1000, 100\), nn\.ReLU\(\),\s*100\.1K params/.test(first), `layer hint: "${first.trim()}"`);
        const head = (await lineWith(page, 'self.head = nn.Linear(width, n_out)')) ?? '';
        check(/1\.0K params/.test(head), `layer hint in the class: "${head.trim()}"`);
        const forward = await until('the forward-line hint', async () => {
            const line = await lineWith(page!, 'return self.head(self.body(x))');
            return line?.includes('[B, 10]') ? line : undefined;
        });
        check(/\[B, 10\] · \d/.test(forward), `forward-line hint: "${forward.trim()}"`);
        // What the editor holds (its text box, as a screen reader reads it) has the line without the hint.
        const held = (await page.getByRole('code').getByRole('textbox', { name: 'mlp.py' }).inputValue()).split(/\r?\n/);
        check(held.some((l) => l.trim() === 'nn.Linear(1000, 100), nn.ReLU(),') && !held.some((l) => l.includes('params')),
            'the hints are decorations, not text of the document');

        // The code lens above each model.
        const lens = await until('the code lens of MLP', async () =>
            (await lenses(page!)).find((l) => l.includes('131.4K params · training peak') && l.includes('batch 256')));
        check(/131\.4K params · training peak [\d.]+ MiB · device total [\d.]+ MiB \/ 79\.19 GiB · batch 256 · fp32 · adam/.test(lens),
            `code lens: "${lens}"`);

        // The hover on the class name (the cursor on it, Show or Focus Hover): parameters and the training peak.
        await goTo(page, mlpClass);
        const hover = await until('the hover on MLP', async () => {
            await runCommand(page!, 'Show or Focus Hover');
            const text = await page!.getByRole('tooltip').filter({ hasText: 'parameters' }).first().textContent({ timeout: 3000 });
            return text ?? undefined;
        }, 30_000);
        check(hover.includes('131,410 parameters'), 'the hover gives the parameter count (131,410 parameters)');
        check(/training peak\s*67\.5 MiB/.test(hover), 'the hover gives the training peak (67.5 MiB)');
        check(hover.includes('batch size: 256 (editor settings)'), 'the hover says the batch size comes from the editor settings');
        await page.waitForTimeout(500); // the hover fully drawn
        await page.screenshot({ path: SCREENSHOT });
        step(`screenshot: ${path.relative(ROOT, SCREENSHOT)}`);
        await page.keyboard.press('Escape');

        // The code lens of the class (the cursor's line: Show CodeLens Commands for Current Line) opens the per-layer report.
        await runCommand(page, 'Show CodeLens Commands for Current Line');
        await page.getByRole('option', { name: /^131\.4K params · training peak/ }).click({ timeout: 10_000 });
        // The server's HTML report: the memory timeline's chart (inline SVG) and the per-layer table.
        const report = await until('the report webview of MLP', () => reportFrame(page!, 'headLinear[256, 10]'), 30_000);
        check(await report.locator('svg#training-chart').isVisible(), 'the code lens opens the report: the training memory timeline (an svg) is drawn');
        const peakLabel = (await report.locator('#training-peak-label').textContent()) ?? '';
        check(/^peak 67\.5 MiB/.test(peakLabel), `its peak label gives the training peak: "${peakLabel}"`);
        check(await page.getByRole('tab', { name: /^vramlint: MLP/ }).count() === 1, 'in a tab "vramlint: MLP"');
        // Under the webview's policy the page's own style and script (with the nonce) apply: its table sorts.
        check(await report.locator('svg.chart').first().evaluate((e) => getComputedStyle(e).display === 'block'), 'the page\'s style element applies');
        await page.screenshot({ path: REPORT_SCREENSHOT });
        step(`screenshot: ${path.relative(ROOT, REPORT_SCREENSHOT)}`);
        await report.getByRole('button', { name: 'parameters' }).click();
        await until('the table sorted by parameters', async () =>
            (await report.locator('th[aria-sort=ascending]').textContent({ timeout: 500 }))?.includes('parameters'));
        check(true, 'the page\'s script runs: a click sorts the layer table');
        await runCommand(page, 'View: Focus First Editor Group'); // back from the webview's click to mlp.py

        // An edit of the model (n_out 10 -> 100) refreshes the open report in place; undone, it comes back.
        const nOut = positionOf(source, 'def __init__', 'n_out: int = 10');
        await goTo(page, { line: nOut.line, column: nOut.column + 'n_out: int = 10'.length });
        await page.keyboard.type('0');
        step('n_out: int = 100 typed in the editor');
        const edited = await until('the report to follow the edit', () => reportFrame(page!, 'headLinear[256, 100]'), 30_000);
        check(true, 'the report follows the edit (head: [256, 100])');
        // The page is replaced in the same webview, which keeps where the reader had scrolled to (the sorted table).
        check(await edited.evaluate(() => window.scrollY > 0), 'the page stays scrolled where it was');
        check(await page.getByRole('tab', { name: /^vramlint: MLP/ }).count() === 1, 'in the same tab, no new panel');
        check(await page.getByRole('code').getByRole('textbox', { name: 'mlp.py' }).evaluate((e) => e === document.activeElement),
            'the editor keeps the focus');
        await page.keyboard.press('Control+z');
        await until('the report to follow the undo', () => reportFrame(page!, 'headLinear[256, 10]'), 30_000);
        check(true, 'the undo refreshes it back (head: [256, 10])');

        // A budget the model exceeds and a layer limit: VL001 and VL101 in the Problems panel, the code lens says so.
        writeJson(workspaceSettings, { ...settings, 'vramlint.gpu': '0.5GiB', 'vramlint.maxLayerParams': 50_000 });
        step('vramlint.gpu set to 0.5GiB, vramlint.maxLayerParams to 50000 in the workspace settings');
        await until('the code lens to say "does NOT fit"', async () => (await lenses(page!)).some((l) => l.includes('/ 512.0 MiB (does NOT fit)')));
        await runCommand(page, 'Problems: Focus on Problems View');
        // A problem is a tree item named "Error: <message> at line L and character C. generated by <source>".
        const problem = (code: string) => page!.getByRole('treeitem').filter({ hasText: code }).first();
        const overBudget = await until('VL001 in the Problems panel', () => problem('VL001').getAttribute('aria-label', { timeout: 1000 }).then((t) => t ?? undefined), 30_000);
        check(/^Error: training \w+ needs [\d.]+ MiB .*: more than the 0\.5GiB's 512\.0 MiB .* generated by vramlint$/.test(overBudget),
            `Problems: "${overBudget.slice(0, 160)}"`);
        const oversized = await until('VL101 in the Problems panel', () => problem('VL101').getAttribute('aria-label', { timeout: 1000 }).then((t) => t ?? undefined));
        check(/^Warning: .* holds 100,100 parameters, more than max-layer-params \(50,000\) .* generated by vramlint$/.test(oversized),
            `Problems, vramlint.maxLayerParams applied: "${oversized.slice(0, 160)}"`);
        await page.screenshot({ path: path.join(ARTIFACTS, 'problems.png') });

        // The language status item (its hover, on a click on the status bar's language status): the model at the cursor.
        await goTo(page, mlpClass);
        // Its accessible name carries the items' texts: wait for the item of the model at the cursor, then open it.
        const statusButton = page.getByRole('button', { name: /^Editor Language Status: .*MLP: device total/ });
        await statusButton.waitFor({ timeout: 20_000 });
        const statusHover = page.getByRole('tooltip').filter({ hasText: 'device total' }).first();
        const languageStatus = await until('the language status item', async () => {
            if (!(await statusHover.isVisible())) {
                await statusButton.click({ timeout: 2000 });
            }
            return (await statusHover.textContent({ timeout: 2000 })) ?? undefined;
        }, 20_000);
        check(/MLP: device total [\d.]+ MiB \/ 512\.0 MiB \(does NOT fit\)/.test(languageStatus), `language status item: "${languageStatus.slice(0, 160)}"`);
        await page.screenshot({ path: path.join(ARTIFACTS, 'language-status.png') });
        await page.keyboard.press('Escape');
        // The cursor moved to another model of the file: the item names it.
        await goTo(page, positionOf(source, 'def make_mlp', 'make_mlp'));
        await page.getByRole('button', { name: /^Editor Language Status: .*make_mlp: device total [\d.]+ MiB \/ 512\.0 MiB/ }).waitFor({ timeout: 10_000 });
        check(true, 'the cursor on make_mlp: the item names make_mlp');
        // The status bar item of its own, visible without a click, names it too.
        await page.getByRole('button', { name: /^vramlint make_mlp: device total [\d.]+ MiB \/ 512\.0 MiB/ }).waitFor({ timeout: 10_000 });
        check(true, 'the status bar item names make_mlp');
        await goTo(page, positionOf(source, 'model = nn.Sequential', 'model'));
        await page.getByRole('button', { name: /^Editor Language Status: .*\bmodel: device total/ }).waitFor({ timeout: 10_000 });
        await page.getByRole('button', { name: /^vramlint model: device total/ }).waitFor({ timeout: 10_000 });
        check(true, 'the cursor on the Sequential above: the items name model');

        const extensionLog = logFiles(userData).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
        check(extensionLog.includes(`interpreter: ${PYTHON} (from vramlint.interpreter); import strategy: ${settings['vramlint.importStrategy']}`),
            `the server runs on ${PYTHON}, ${settings['vramlint.importStrategy']} (the extension's log)`);
        // A notification is a dialog named "<message>, source: <source>, notification".
        const errors = await page.getByRole('dialog', { name: /source: vramlint/ }).allTextContents();
        check(errors.length === 0, `no vramlint notification (${errors.join(' | ') || 'none'})`);

        // Last, an interpreter without vramlint: the server restarts on it, and a message says how to install it.
        const bare = '/usr/bin/python3';
        if (spawnSync(bare, ['-c', 'import vramlint']).status === 0) {
            step(`skipped the missing-vramlint check: ${bare} has vramlint`);
        } else {
            writeJson(workspaceSettings, { ...settings, 'vramlint.interpreter': [bare], 'vramlint.importStrategy': 'fromEnvironment' });
            step(`vramlint.interpreter set to ${bare}, which has no vramlint`);
            const toast = page.getByRole('dialog', { name: /^vramlint is not installed/ }).first();
            const message = await until('the message that vramlint is not installed', () => toast.textContent({ timeout: 1000 }).then((t) => t ?? undefined));
            check(message.includes(`with: ${bare} -m pip install /path/to/vramlint`), `the message gives the install command ("${message.slice(message.indexOf('vramlint is not')).slice(0, 100)}...")`);
            check(await toast.getByRole('button', { name: 'Install in Terminal' }).count() === 1, 'with a button that runs it in a terminal');
            await page.screenshot({ path: path.join(ARTIFACTS, 'not-installed.png') });
        }
        if (!BUNDLED) {
            await multiRoot(page, port, tmp, source, settings, userData);
        }
        step('passed');
    } catch (err) {
        if (page) {
            await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png') }).catch(() => undefined);
            console.error(`screenshot of the failure: ${path.join(ARTIFACTS, 'failure.png')}`);
        }
        for (const file of logFiles(userData)) {
            console.error(`--- ${file} (last lines)\n${fs.readFileSync(file, 'utf8').split('\n').slice(-30).join('\n')}`);
        }
        console.error(`code-server's log: ${path.join(ARTIFACTS, 'code-server.log')}`);
        throw err;
    } finally {
        await context?.close().catch(() => undefined);
        try {
            process.kill(-server.pid!, 'SIGKILL'); // the whole process group: code-server, its extension host, the language server
        } catch {
            // already gone
        }
        fs.closeSync(log);
        fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
    }
}

main().then(() => {
    console.log(`e2e: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, (err: unknown) => {
    console.error(`e2e: FAILED: ${err instanceof Failure ? err.message : err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
});
