/**
 * The HTML report of `vramlint report --html` in a real browser (headless Chromium, playwright-core):
 * runs `.venv/bin/vramlint report FILE --model NAME --html ...` and `--format json` on the same
 * model, opens the file with every request that is not the file itself refused, and asserts what a
 * reader sees: both charts' SVG rendered with a size, the stacked areas drawn, the peak labels
 * carrying the JSON's training and inference peaks, the layer table sorted by a click on a header
 * (and back), no script error and no request beyond the file.
 *
 *   npm run e2e:report [-- --screenshot docs/images/report-html.png] [--file examples/mlp.py]
 *                      [--model model] [--args "--batch-size 8"] [--vramlint PATH]
 *
 * The report's command is the repository's .venv (`--vramlint` for another); PYTHONPATH is passed
 * on, so `PYTHONPATH=$PWD/server` tests a working tree's code.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..', '..');

function option(name: string, fallback: string): string {
    const i = process.argv.indexOf(name);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const FILE = path.resolve(ROOT, option('--file', 'examples/mlp.py'));
const MODEL = option('--model', 'model');
const EXTRA = option('--args', '').split(' ').filter((a) => a);
const VRAMLINT = path.resolve(ROOT, option('--vramlint', '.venv/bin/vramlint'));
const SCREENSHOT = process.argv.includes('--screenshot') ? path.resolve(option('--screenshot', 'docs/images/report-html.png')) : undefined;

const started = Date.now();
function step(message: string): void {
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
}

class Failure extends Error {}

function check(ok: boolean, what: string): void {
    if (!ok) {
        throw new Failure(what);
    }
    step(`ok: ${what}`);
}

/** render/units.py `fmt_bytes`: binary units as the report prints them. */
export function fmtBytes(n: number): string {
    for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
        if (Math.abs(n) >= size) {
            return `${(n / size).toFixed(unit === 'GiB' ? 2 : 1)} ${unit}`;
        }
    }
    return `${Math.trunc(n)} B`;
}

function vramlint(...args: string[]): string {
    const r = spawnSync(VRAMLINT, ['report', path.relative(ROOT, FILE), '--model', MODEL, ...EXTRA, ...args],
        { encoding: 'utf8', timeout: 300_000, cwd: ROOT });
    // Exit 1 says "does not fit", still a report; 2 and others are failures.
    if (r.status !== 0 && r.status !== 1) {
        throw new Failure(`vramlint report ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
    }
    return r.stdout;
}

interface Peak { bytes: string | null; text: string | null }

async function peakLabel(page: Page, chart: string): Promise<Peak> {
    const label = page.locator(`#${chart}-peak-label`);
    return { bytes: await label.getAttribute('data-bytes'), text: await label.textContent() };
}

/** The sort keys of a column of the layer table, top to bottom. */
async function column(page: Page, index: number): Promise<string[]> {
    return page.locator('#layers tbody tr').evaluateAll(
        (rows, i) => rows.map((r) => (r as HTMLTableRowElement).cells[i].getAttribute('data-sort') ?? ''), index);
}

function sortedCopy(xs: number[], descending = false): number[] {
    return [...xs].sort((a, b) => (descending ? b - a : a - b));
}

async function main(): Promise<void> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vramlint-report-html-'));
    const out = path.join(tmp, 'report.html');
    vramlint('--html', out, '--no-cache');
    const doc = JSON.parse(vramlint('--format', 'json', '--no-cache')) as {
        files: { models: { memory: { bytes: { train_peak: number; inference_peak: number } } }[] }[];
    };
    const bytes = doc.files[0].models[0].memory.bytes;
    step(`${path.relative(ROOT, FILE)} ${MODEL}: training peak ${bytes.train_peak}, inference peak ${bytes.inference_peak}`);

    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync'],
    });
    try {
        const context = await browser.newContext({ viewport: { width: 1040, height: 900 } });
        const page = await context.newPage();
        const refused: string[] = [];
        const url = `file://${out}`;
        await context.route('**/*', (route) => {
            if (route.request().url() === url) {
                return route.continue();
            }
            refused.push(route.request().url());
            return route.abort();
        });
        const errors: string[] = [];
        page.on('pageerror', (err) => errors.push(err.message));
        page.on('console', (msg) => {
            if (msg.type() === 'error') {
                errors.push(msg.text());
            }
        });
        await page.goto(url);

        for (const chart of ['training', 'inference']) {
            const box = await page.locator(`#${chart}-chart`).boundingBox();
            check(box !== null && box.width > 400 && box.height > 100, `the ${chart} chart is drawn (${box?.width}x${box?.height})`);
            const areas = page.locator(`#${chart}-chart path.area`);
            const count = await areas.count();
            check(count >= 3, `the ${chart} chart stacks ${count} categories`);
            const tall: string[] = []; // a category of a few KiB under GiB is drawn, a pixel or less high
            for (let i = 0; i < count; i++) {
                const a = await areas.nth(i).boundingBox();
                const category = await areas.nth(i).getAttribute('data-category') ?? '?';
                check(a !== null && a.width > 400, `area ${category} spans the chart`);
                if (a !== null && a.height > 2) {
                    tall.push(category);
                }
            }
            check(tall.length >= 2, `the ${chart} chart's areas have heights (${tall.join(', ')})`);
        }
        for (const [chart, peak] of [['training', bytes.train_peak], ['inference', bytes.inference_peak]] as const) {
            const label = await peakLabel(page, chart);
            check(label.bytes === String(peak) && (label.text ?? '').startsWith(`peak ${fmtBytes(peak)}`),
                `the ${chart} peak label says the JSON's peak: "${label.text}"`);
            check(await page.locator(`#${chart}-peak-label`).isVisible(), `the ${chart} peak label is visible`);
        }

        // The layer table: "kept for backward" (column 5) sorts ascending, then descending; "#" restores it.
        const original = await column(page, 0);
        const header = (name: string) => page.locator('#layers thead th button', { hasText: name });
        await header('kept for backward').click();
        const up = (await column(page, 5)).map(Number);
        check(JSON.stringify(up) === JSON.stringify(sortedCopy(up)) && new Set(up).size > 1,
            `a click sorts by bytes kept for backward (${up.length} rows, ${up[0]} to ${up[up.length - 1]})`);
        await header('kept for backward').click();
        const down = (await column(page, 5)).map(Number);
        check(JSON.stringify(down) === JSON.stringify(sortedCopy(down, true)), 'a second click sorts the other way');
        check(await page.locator('#layers thead th[aria-sort=descending]').count() === 1, 'the header says how it sorts');
        await header('#').click();
        check(JSON.stringify(await column(page, 0)) === JSON.stringify(original), '"#" restores the order');

        check(errors.length === 0, `no script error (${errors.join('; ')})`);
        check(refused.length === 0, `no request beyond the file (${refused.join(', ')})`);
        if (SCREENSHOT) {
            // The page down to the charts' legend (in page coordinates, whatever the scroll).
            const bottom = await page.locator('.legend').evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
            fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
            await page.screenshot({ path: SCREENSHOT, fullPage: true, clip: { x: 0, y: 0, width: 1040, height: Math.ceil(bottom + 16) } });
            step(`screenshot: ${path.relative(ROOT, SCREENSHOT)}`);
        }
    } finally {
        await browser.close();
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    step('passed');
}

main().catch((err: unknown) => {
    console.error(err instanceof Failure ? `FAILED: ${err.message}` : err);
    process.exit(1);
});
