/**
 * The `vramlint/status` notification (docs/lsp.md) and what the status item shows of it: the model
 * at the cursor (else the file's first), its training memory against the GPU. Pure: no `vscode`
 * import.
 */

export const STATUS_METHOD = 'vramlint/status';

export interface ModelStatus {
    name: string;
    /** The model's definition, 0-based. */
    line: number | null;
    params: number | null;
    trainPeak: number | null;
    inferencePeak: number | null;
    deviceTotal: number | null;
    deviceMemory: number | null;
    device: string | null;
    batchSize: number | null;
    /** `train` or `infer` (what must fit); absent from older servers. */
    mode?: string | null;
    /** The inference peak with the CUDA context. */
    inferenceNeed?: number | null;
    /** On several GPUs, what the figures are: "per GPU, 8 ranks (fsdp2 full-shard)"; absent on one GPU. */
    perGpu?: string;
    fits: boolean | null;
}

export interface FileStatus {
    uri: string;
    version: number;
    models: ModelStatus[];
    errors: number;
}

export type Severity = 'information' | 'warning' | 'error';

export interface StatusView {
    text: string;
    detail: string;
    severity: Severity;
    model?: string;
}

/** The model the cursor is in: the last one defined at or above its line, else the file's first. */
export function modelAt(models: ModelStatus[], line: number | undefined): ModelStatus | undefined {
    const placed = models.filter((m) => m.line !== null).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    if (line !== undefined) {
        const above = placed.filter((m) => (m.line ?? 0) <= line).pop();
        if (above !== undefined) {
            return above;
        }
    }
    return placed[0] ?? models[0];
}

export function statusView(status: FileStatus | undefined, line: number | undefined): StatusView {
    if (status === undefined) {
        return { text: 'vramlint', detail: 'not analysed yet', severity: 'information' };
    }
    const m = modelAt(status.models, line);
    if (m === undefined) {
        return { text: 'vramlint: no model', detail: 'no PyTorch model in this file', severity: 'information' };
    }
    const others = status.models.length > 1 ? `; ${status.models.length} models in this file` : '';
    if (m.deviceTotal === null || m.deviceMemory === null) {
        return {
            text: `${m.name}: ${count(m.params)} params`, model: m.name, severity: 'information',
            detail: `no memory estimate: it needs inputs (a batch size, an input shape: see the hover)${others}`,
        };
    }
    const fits = m.fits !== false;
    const each = m.perGpu !== undefined ? ' per GPU' : '';
    const several = m.perGpu !== undefined ? `${m.perGpu}; ` : '';
    // The figures by the names the CLI, the hover and the code lens give them.
    if (m.mode === 'infer' && m.inferenceNeed !== undefined && m.inferenceNeed !== null) {
        return {
            text: `${m.name}: inference needs ${fmtBytes(m.inferenceNeed)}${each} / ${fmtBytes(m.deviceMemory)}${fits ? '' : ' (does NOT fit)'}`,
            model: m.name,
            severity: fits ? 'information' : 'warning',
            detail: `${several}inference peak ${fmtBytes(m.inferencePeak)}; ${fmtBytes(m.inferenceNeed)} with the CUDA context on the ` +
                `${m.device ?? 'GPU'}; batch ${m.batchSize ?? '?'}${others}`,
        };
    }
    return {
        text: `${m.name}: device total ${fmtBytes(m.deviceTotal)}${each} / ${fmtBytes(m.deviceMemory)}${fits ? '' : ' (does NOT fit)'}`,
        model: m.name,
        severity: fits ? 'information' : 'warning',
        detail: `${several}training peak ${fmtBytes(m.trainPeak)}; device total ${fmtBytes(m.deviceTotal)} (with the CUDA ` +
            `context) on the ${m.device ?? 'GPU'}; batch ${m.batchSize ?? '?'}${others}`,
    };
}

/** As the server's `fmt_bytes`: binary units, GiB with two decimals, MiB and KiB with one. */
export function fmtBytes(n: number | null): string {
    if (n === null) {
        return 'unknown';
    }
    for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
        if (Math.abs(n) >= size) {
            return `${(n / size).toFixed(unit === 'GiB' ? 2 : 1)} ${unit}`;
        }
    }
    return `${Math.trunc(n)} B`;
}

/** As the server's `count`: `131.4K`. */
export function count(n: number | null): string {
    if (n === null) {
        return '?';
    }
    for (const [unit, size] of [['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
        if (n >= size) {
            return `${(n / size).toFixed(1)}${unit}`;
        }
    }
    return String(n);
}
