import { describe, expect, it } from 'vitest';
import { INT8_MATMUL_LAYOUTS } from './webgpu.js';
import { Int8SubgroupMatmulProgram } from './webgpu-programs.js';

// The WGSL itself only compiles where the device has int8 subgroup matrices (not SwiftShader); the startup
// check runs it there. These pin down what each layout asks the compiler for.
const cfg = { M: 16, N: 16, K: 32 };

describe('int8 subgroup matmul WGSL', () => {
  it('turns off the subgroup-matrix uniformity rule under its real name', () => {
    const code = new Int8SubgroupMatmulProgram(70, 75, cfg, 32, INT8_MATMUL_LAYOUTS[0]!).getUserCode();
    expect(code).toContain('diagnostic(off, chromium.subgroup_matrix_uniformity);');
    expect(code).toContain('enable chromium_experimental_subgroup_matrix;');
  });

  it('spells majorness as a template argument or as the legacy bool, one or the other', () => {
    const templated = new Int8SubgroupMatmulProgram(70, 75, cfg, 32, {
      staged: true,
      offsetUnit: 1,
      templated: true,
    }).getUserCode();
    expect(templated).toContain('subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>, row_major>(&xTile, ');
    expect(templated).toContain('subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>, col_major>(&wTile, ');
    expect(templated).toContain('subgroupMatrixStore<row_major>(&block, ');
    expect(templated).not.toMatch(/, (true|false), /);
    const legacy = new Int8SubgroupMatmulProgram(70, 75, cfg, 32, {
      staged: false,
      offsetUnit: 4,
    }).getUserCode();
    expect(legacy).toContain('subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&xq, ');
    expect(legacy).toMatch(/subgroupMatrixStore\(&block, .*, acc00, false, 64u\);/);
    expect(legacy).not.toContain('row_major');
  });

  it('tries every layout in both spellings, templated first', () => {
    expect(INT8_MATMUL_LAYOUTS).toHaveLength(8);
    expect(INT8_MATMUL_LAYOUTS.slice(0, 4).every((l) => l.templated)).toBe(true);
    expect(INT8_MATMUL_LAYOUTS.slice(4).every((l) => !l.templated)).toBe(true);
  });
});
