import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { formatBackendInfo, selectBackend } from './select-backend.js';
import {
  applyTfjsFlags,
  parseTfjsFlags,
  TfjsFlagsError,
  tfjsFlagType,
  WEBGPU_FLAG_DEFAULTS,
} from './tfjs-flags.js';

describe('parseTfjsFlags', () => {
  it('parses webgpu and core flags with their types', () => {
    expect(
      parseTfjsFlags(
        ' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=60, WEBGPU_CPU_FORWARD=false,WEBGPU_PRINT_SHADER=matmul ,CHECK_COMPUTATION_FOR_ERRORS=true',
      ),
    ).toEqual({
      WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 60,
      WEBGPU_CPU_FORWARD: false,
      WEBGPU_PRINT_SHADER: 'matmul',
      CHECK_COMPUTATION_FOR_ERRORS: true,
    });
    expect(parseTfjsFlags('WEBGPU_MATMUL_PROGRAM_TYPE=-1')).toEqual({ WEBGPU_MATMUL_PROGRAM_TYPE: -1 });
    expect(parseTfjsFlags(undefined)).toEqual({});
    expect(parseTfjsFlags('  ')).toEqual({});
  });

  it('knows webgpu flags before the backend is imported and core flags from tfjs', () => {
    expect(tfjsFlagType('WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL')).toBe('number');
    expect(tfjsFlagType('DEBUG')).toBe('boolean');
    expect(tfjsFlagType('WEBGPU_NOT_A_FLAG')).toBeNull();
    expect(tfjsFlagType('NOT_A_FLAG')).toBeNull();
  });

  it('names the unknown flag', () => {
    expect(() => parseTfjsFlags('WEBGPU_DEFERRED_SUBMIT_BATCH=30')).toThrow(
      /MPTJS_TFJS_FLAGS: unknown tfjs flag "WEBGPU_DEFERRED_SUBMIT_BATCH" \(webgpu flags: WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE, /,
    );
    expect(() => parseTfjsFlags('NO_SUCH_FLAG=1')).toThrow(TfjsFlagsError);
  });

  it('names the flag whose value is bad', () => {
    const cases: [string, RegExp][] = [
      [
        'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=lots',
        /WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE expects a number, got "lots"/,
      ],
      ['WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=', /WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE expects a number, got ""/],
      [
        'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=0',
        /WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE expects a whole number of dispatches >= 1/,
      ],
      ['WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=2.5', /expects a whole number of dispatches/],
      [
        'WEBGPU_MATMUL_PROGRAM_TYPE=4',
        /WEBGPU_MATMUL_PROGRAM_TYPE expects a whole number from -1 \(automatic\) to 3, got "4"/,
      ],
      ['WEBGPU_CPU_FORWARD=yes', /WEBGPU_CPU_FORWARD expects true or false, got "yes"/],
      ['WEBGPU_CPU_FORWARD=1', /WEBGPU_CPU_FORWARD expects true or false/],
      ['WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD=0x10', /WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD expects a number/],
    ];
    for (const [spec, message] of cases) expect(() => parseTfjsFlags(spec), spec).toThrow(message);
  });

  it('rejects malformed entries and repeated flags', () => {
    expect(() => parseTfjsFlags('WEBGPU_CPU_FORWARD')).toThrow(
      'MPTJS_TFJS_FLAGS: expected NAME=value, got "WEBGPU_CPU_FORWARD"',
    );
    expect(() => parseTfjsFlags('WEBGPU_CPU_FORWARD=true,')).toThrow(/expected NAME=value, got ""/);
    expect(() => parseTfjsFlags('WEBGPU_CPU_FORWARD=true,WEBGPU_CPU_FORWARD=false')).toThrow(
      'MPTJS_TFJS_FLAGS: WEBGPU_CPU_FORWARD is given twice',
    );
  });
});

describe('applying tfjs flags', () => {
  const saved = process.env['MPTJS_TFJS_FLAGS'];
  afterEach(() => {
    if (saved === undefined) delete process.env['MPTJS_TFJS_FLAGS'];
    else process.env['MPTJS_TFJS_FLAGS'] = saved;
  });

  it('sets registered flags and keeps webgpu flags for the backend to read once it is imported', () => {
    const before = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
    applyTfjsFlags({ CHECK_COMPUTATION_FOR_ERRORS: !before });
    expect(tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS')).toBe(!before);
    applyTfjsFlags({ CHECK_COMPUTATION_FOR_ERRORS: before });
    applyTfjsFlags({ WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD: 1000 });
    expect(tf.env().getFlags()['WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD']).toBe(1000);
  });

  it('applies MPTJS_TFJS_FLAGS on cpu and prints them in the backend line', async () => {
    process.env['MPTJS_TFJS_FLAGS'] = 'CHECK_COMPUTATION_FOR_ERRORS=false';
    const lines: string[] = [];
    const info = await selectBackend('cpu', { log: (l) => lines.push(l) });
    expect(info.flags).toEqual({ CHECK_COMPUTATION_FOR_ERRORS: false });
    expect(lines).toEqual(['[mptjs] backend=cpu flags=CHECK_COMPUTATION_FOR_ERRORS=false (requested)']);
    expect(formatBackendInfo({ name: 'wasm', reason: 'requested' })).toBe('[mptjs] backend=wasm (requested)');
  });

  it('fails before starting any backend when a flag is bad', async () => {
    process.env['MPTJS_TFJS_FLAGS'] = 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=soon';
    await expect(selectBackend('cpu', { log: false })).rejects.toThrow(
      'MPTJS_TFJS_FLAGS: WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE expects a number, got "soon"',
    );
    await expect(selectBackend('cpu', { log: false, tfjsFlags: 'BOGUS=1' })).rejects.toThrow(
      /unknown tfjs flag "BOGUS"/,
    );
  });

  it.runIf(webgpuExpected)(
    'applies the webgpu defaults and the overrides on the webgpu backend',
    async () => {
      process.env['MPTJS_TFJS_FLAGS'] =
        'WEBGPU_CPU_FORWARD=false,WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL=64';
      const lines: string[] = [];
      const info = await selectBackend('webgpu', { log: (l) => lines.push(l) });
      expect(tf.getBackend()).toBe('webgpu');
      expect(info.flags).toEqual({
        ...WEBGPU_FLAG_DEFAULTS,
        WEBGPU_CPU_FORWARD: false,
        WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL: 64,
      });
      for (const [name, value] of Object.entries(info.flags ?? {}))
        expect(tf.env().get(name), name).toBe(value);
      expect(lines[0]).toContain(
        'flags=WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=30,WEBGPU_CPU_FORWARD=false,WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL=64',
      );
      // An override replaces the default; the backend still computes correctly under it.
      const again = await selectBackend('webgpu', {
        log: false,
        tfjsFlags: 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=1,WEBGPU_CPU_FORWARD=true',
      });
      expect(again.flags).toEqual({ WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 1, WEBGPU_CPU_FORWARD: true });
      expect(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')).toBe(1);
      const x = tf.tensor1d([1, 2, 3, 4]);
      const y = tf.mul(x, x);
      expect(Array.from(await y.data())).toEqual([1, 4, 9, 16]);
      tf.dispose([x, y]);
      applyTfjsFlags({ WEBGPU_CPU_FORWARD: true, WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL: -1 });
    },
  );
});
