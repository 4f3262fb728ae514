import { parseBackendRequest } from '@mptjs/kernels';
import { parseQuantizeMode, WEIGHT_FORMATS, type WeightFormat } from '@mptjs/mpt-model';
import { type Command, InvalidArgumentError } from 'commander';
import { DECODE_ENGINES, type DecodeEngineChoice } from '../engine/choose-engine.js';

/** Commander parsers: a bad value becomes a usage error (exit 2) that names the option. */
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
      throw new InvalidArgumentError('expected an integer');
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

export function numberOption(min: number, max: number, minExclusive = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
    if ((minExclusive ? n <= min : n < min) || n > max) {
      throw new InvalidArgumentError(`expected a number in ${minExclusive ? '(' : '['}${min}, ${max}]`);
    }
    return n;
  };
}

export function backendOption(value: string): string {
  try {
    return parseBackendRequest(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function addBackendOption(command: Command): Command {
  return command.option('--backend <name>', 'tfjs backend: auto, webgpu, wasm or cpu', backendOption, 'auto');
}

export function quantizeOption(value: string): string {
  try {
    return parseQuantizeMode(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `--quantize int8|w8a8`: int8 inference (wasm and webgpu backends). */
export function addQuantizeOption(command: Command): Command {
  return command.option(
    '--quantize <mode>',
    'int8 quantization for inference (wasm, webgpu; ~4x smaller, faster decode): int8 (weights only) or w8a8 ' +
      "(prefill's activations too, on webgpu devices with int8 subgroup matrices)",
    quantizeOption,
  );
}

/** A parser for an option that takes one of `allowed`. */
export function choiceOption<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}`);
    }
    return value as T;
  };
}

export const decodeEngineOption = choiceOption<DecodeEngineChoice>(DECODE_ENGINES);

/** `--decode-engine auto|recorded|tfjs`: how `serve` runs its decode steps. */
export function addDecodeEngineOption(command: Command): Command {
  return command.option(
    '--decode-engine <engine>',
    'decode steps: recorded (one recorded WebGPU pass per step for the whole batch), tfjs (tfjs kernels), or ' +
      'auto (recorded on the webgpu backend when it can be built, else tfjs)',
    decodeEngineOption,
    'auto',
  );
}

export const decodeWeightsOption = choiceOption<WeightFormat>(WEIGHT_FORMATS);

/** `--decode-weights f32|f16`: how the recorded decode step reads the weight matrices. */
export function addDecodeWeightsOption(command: Command): Command {
  return command.option(
    '--decode-weights <format>',
    "weights of the recorded decode step: f32 (the model's own), or f16 (half copies of the matrices made at " +
      'load, half the bytes read per token, more device memory; any WebGPU adapter)',
    decodeWeightsOption,
    'f32',
  );
}
