import { describe, expect, it } from 'vitest';
import { compilerErrors } from './compile-errors.js';

// The shape of Dawn's message for a module with deprecation warnings before its error (as an NVIDIA driver
// reported it for the int8 subgroup matmul).
const warning = (line: number) =>
  `:${line}:20 warning: use of deprecated builtin\n` +
  `          let a0 = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xTile, 0u, false, 32u);\n` +
  `                   ${'^'.repeat(60)}\n`;
const message =
  'Error while parsing WGSL: ' +
  warning(216) +
  warning(217) +
  ':220:11 error: subgroupMatrixLoad must only be called from uniform control flow\n' +
  '          let b0 = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wTile, off, true, 32u);\n' +
  `          ${'^'.repeat(20)}\n` +
  ':200:9 note: control flow depends on possibly non-uniform value\n' +
  '        if (r < m) {\n' +
  warning(230) +
  '\n - While validating [ShaderModuleDescriptor]\n';

describe('compilerErrors', () => {
  it('keeps the prefix, the errors and their notes, and drops the warnings', () => {
    const out = compilerErrors(message);
    expect(out).toBe(
      'Error while parsing WGSL: :220:11 error: subgroupMatrixLoad must only be called from uniform control flow ' +
        'let b0 = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&wTile, off, true, 32u); ^ ' +
        ':200:9 note: control flow depends on possibly non-uniform value if (r < m) {',
    );
    expect(out).not.toContain('deprecated');
  });

  it('returns a message without error diagnostics whole, on one line and capped', () => {
    expect(compilerErrors('Device lost:\n  out of memory')).toBe('Device lost: out of memory');
    expect(compilerErrors(warning(1), 30)).toHaveLength(30);
  });

  it('keeps every error when there are several', () => {
    const two = 'x: error: first\n:3:1 warning: w\n:4:2 error: second\n';
    expect(compilerErrors(two)).toBe('x: error: first :4:2 error: second');
  });
});
