// The kit's `pytorch` section: the PyTorch reference's result (pytorch_reference.py, run by run.sh before the
// WebGPU measurements) as a kit section, mptjs's training and decode figures as ratios of PyTorch's, and the
// summary rows for both.

const PRECISIONS = ['fp32', 'bf16'];
/** Exit statuses of `timeout`: the reference ran past its budget and was stopped. */
const STOPPED = new Set([124, 137]);

const measured = (e) => e.status === 'ok' && Number.isFinite(e.tokens_per_s) && e.tokens_per_s > 0;

/**
 * The section for the reference's run: `reference` is its JSON (null when it wrote none), `rc` its exit status,
 * `logTail` the end of what it printed, `skip` the reason it did not run at all.
 */
export function pytorchSection({ reference, rc = 0, logTail = '', seconds = null, skip = null }) {
  const section = { name: 'pytorch', kind: 'pytorch' };
  if (skip) return { ...section, status: 'skipped', note: skip };
  if (seconds !== null) section.seconds = seconds;
  const tail = logTail.trim().split('\n').slice(-5).join('\n');
  const lists = reference?.result;
  if (!lists || !Array.isArray(lists.train) || !Array.isArray(lists.decode)) {
    const why = STOPPED.has(rc) ? 'was stopped at its budget' : `exited with status ${rc}`;
    return { ...section, status: 'failed', error: `the PyTorch reference ${why} without a result: ${tail}` };
  }
  section.result = {
    torch: reference.torch,
    cuda: reference.cuda,
    device: reference.device,
    device_type: reference.device_type,
    mode: reference.mode,
    budget_s: reference.budget_s,
    elapsed_s: reference.elapsed_s,
    settings: reference.settings,
    train: lists.train,
    decode: lists.decode,
  };
  const all = [...lists.train, ...lists.decode];
  const ok = all.filter(measured).length;
  const notes = [];
  const skipped = all.filter((e) => e.status === 'skipped').length;
  if (skipped > 0) notes.push(`${skipped} of ${all.length} measurements skipped (out of its time budget)`);
  if (rc === 0 || (STOPPED.has(rc) && ok > 0)) {
    section.status = 'ok';
    if (STOPPED.has(rc))
      notes.push('stopped at its budget; the measurements after the last one recorded are missing');
  } else {
    section.status = 'failed';
    const failed = all
      .filter((e) => e.status === 'failed')
      .map((e) => `${e.shape} ${e.precision}: ${e.error}`);
    section.error = failed.length > 0 ? failed.join('; ') : `exited with status ${rc}: ${tail}`;
  }
  if (notes.length > 0) section.note = notes.join('; ');
  return section;
}

/** `train mpt-1b`, `decode mpt-1b batch 16` -> `mpt-1b`: the kit names its model sections after the shape. */
const shapeOf = (section) => section.name.replace(/^(train|decode) /, '').replace(/ batch \d+$/, '');

/**
 * Sets `vs_pytorch_fp32` and `vs_pytorch_bf16` on every measured mptjs training and decode section: its tokens/s
 * over PyTorch's for the same shape (and batch, for decoding), or null where PyTorch has no figure. A training
 * section that measured fewer layers than the shape has is compared through its full-depth estimate.
 */
export function addPytorchRatios(sections, result) {
  for (const s of sections) {
    if (s.status !== 'ok' || (s.kind !== 'train' && s.kind !== 'decode')) continue;
    const r = s.result;
    const shape = shapeOf(s);
    let mine;
    let list;
    let batch;
    if (s.kind === 'train') {
      const partial = r.shape.n_layers < r.shape.n_layers_full;
      mine = partial ? r.tokens_per_s_full_estimate : r.tokens_per_s;
      if (partial) r.vs_pytorch_basis = 'the full-depth estimate (tokens_per_s_full_estimate)';
      list = result?.train ?? [];
      batch = r.shape.batch;
    } else {
      mine = r.decode_tokens_per_s;
      list = result?.decode ?? [];
      batch = r.batch ?? 1;
    }
    // Decoding through the recorded WebGPU step (f32 and f16 weights), where measured, gets its own ratios beside
    // the tfjs path's.
    const recorded =
      s.kind === 'decode'
        ? { recorded: r.decode_tokens_per_s_recorded, recorded_f16: r.decode_tokens_per_s_recorded_f16 }
        : {};
    for (const precision of PRECISIONS) {
      const theirs = list.find(
        (e) => e.shape === shape && e.precision === precision && e.batch === batch && measured(e),
      );
      r[`vs_pytorch_${precision}`] = theirs && Number.isFinite(mine) ? mine / theirs.tokens_per_s : null;
      for (const [name, rate] of Object.entries(recorded)) {
        if (rate === undefined) continue;
        r[`vs_pytorch_${precision}_${name}`] =
          theirs && Number.isFinite(rate) ? rate / theirs.tokens_per_s : null;
      }
    }
  }
}

/**
 * Adds (or replaces) the `pytorch` section of a kit result and the ratios; `complete` then also requires the
 * section, unless it was left out through `--sections`.
 */
export function mergePytorch(doc, section) {
  doc.sections = (doc.sections ?? []).filter((s) => s.name !== 'pytorch');
  doc.sections.push(section);
  addPytorchRatios(doc.sections, section.result ?? null);
  if (doc.complete !== undefined)
    doc.complete = doc.sections.every((s) => s.status === 'ok' || s.note === 'not among --sections');
  return doc;
}

const num = (v) => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3);
};

/** Summary rows of the `pytorch` section: [label, value, unit]. */
export function pytorchRows(section) {
  const r = section.result;
  const rows = [['pytorch', r.torch, `on ${r.device} (CUDA ${r.cuda ?? 'none'})`]];
  for (const e of r.train) {
    const label = `pytorch train ${e.shape} ${e.precision}`;
    rows.push(
      measured(e)
        ? [label, num(e.tokens_per_s), `tokens/s (batch ${e.batch}, step ${num(e.step_ms)} ms)`]
        : [label, e.status, e.note ?? e.error ?? ''],
    );
  }
  for (const e of r.decode) {
    const label = `pytorch decode ${e.shape} ${e.precision} batch ${e.batch}`;
    rows.push(
      measured(e) ? [label, num(e.tokens_per_s), 'tokens/s'] : [label, e.status, e.note ?? e.error ?? ''],
    );
  }
  return rows;
}

/** The ratio row of an mptjs training or decode section, when the ratios were computed. */
export function ratioRows(section) {
  const r = section.result;
  if (section.status !== 'ok' || !r || !('vs_pytorch_fp32' in r)) return [];
  return [
    [`${section.name} vs PyTorch fp32`, num(r.vs_pytorch_fp32), `x; vs bf16 ${num(r.vs_pytorch_bf16)}x`],
  ];
}
